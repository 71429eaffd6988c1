"""A SavedModel served by TensorFlow's C++ loader, the one TF Serving uses, from Python.

`run_saved_model.c` (beside this module) loads the model with `TF_LoadSessionFromSavedModel` (tag
"serve") and runs requests with `TF_SessionRun`, in a process of its own with no Python in
it; it is compiled on first use with the environment's C compiler against the TensorFlow
wheel's own C API (`libtensorflow_cc.so.2`). This module compiles it, starts it on a model,
and turns signature calls into its requests: it reads the SignatureDefs from
`saved_model.pb` to map input and output keys to graph tensors, as TF Serving does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import struct
import subprocess
import threading
from typing import Mapping, Optional, Sequence

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_saved_model.c")
DEFAULT_BUILD_DIR = os.path.join(REPO_ROOT, "outputs", "c_loader")
SERVE_TAG = "serve"
# TF_DataType values (tensorflow/c/tf_datatype.h) -> numpy dtypes.
_NUMPY_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_, 19: np.float16}
_TF_STRING = 7
_OK = 0
# TF_Code values (tensorflow/c/tf_status.h) by name, for error messages and tests.
CODE_NAMES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 5: "NOT_FOUND",
              8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 12: "UNIMPLEMENTED", 13: "INTERNAL"}


class CLoaderError(RuntimeError):
    """The C loader could not be built or started, or the model does not load in it."""


class RequestError(RuntimeError):
    """TF_SessionRun answered a request with an error status (the process keeps serving)."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{CODE_NAMES.get(code, code)}: {message}")
        self.code = code
        self.code_name = CODE_NAMES.get(code, str(code))
        self.message = message


def tensorflow_c_api() -> tuple[str, str]:
    """(include dir, library dir) of the installed TensorFlow wheel, found without importing it."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise CLoaderError("TensorFlow is not installed in this environment; run `make setup`.")
    package = list(spec.submodule_search_locations)[0]
    include, library = os.path.join(package, "include"), package
    if not os.path.isfile(os.path.join(include, "tensorflow", "c", "c_api.h")):
        raise CLoaderError(f"TensorFlow's C API headers are missing under {include}.")
    if not os.path.isfile(os.path.join(library, "libtensorflow_cc.so.2")):
        raise CLoaderError(f"libtensorflow_cc.so.2 is missing in {library}.")
    return include, library


def build(build_dir: str = DEFAULT_BUILD_DIR) -> str:
    """Compiles run_saved_model.c once per source and TensorFlow; returns the binary's path."""
    include, library = tensorflow_c_api()
    if not os.path.isfile(SOURCE):
        raise CLoaderError(f"{SOURCE} is missing; run this from a checkout of the project.")
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise CLoaderError("no C compiler (cc) found; `make setup` installs one, or set CC.")
    with open(SOURCE, "rb") as source:
        key = hashlib.sha256(source.read() + library.encode()).hexdigest()[:16]
    binary = os.path.join(build_dir, f"run_saved_model-{key}")
    if os.path.isfile(binary):
        return binary
    os.makedirs(build_dir, exist_ok=True)
    partial = f"{binary}.partial-{os.getpid()}"
    command = [compiler, "-std=c11", "-O2", "-Wall", "-Werror", SOURCE, "-o", partial, f"-I{include}",
               f"-L{library}", "-l:libtensorflow_cc.so.2", "-l:libtensorflow_framework.so.2",
               f"-Wl,-rpath,{library}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise CLoaderError(f"compiling {SOURCE} failed:\n{' '.join(command)}\n{result.stderr[-4000:]}")
    os.replace(partial, binary)
    return binary


def read_signatures(export_dir: str) -> dict[str, "Signature"]:
    """The SignatureDefs of the "serve" MetaGraph in `export_dir`/saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2

    from google.protobuf.message import DecodeError

    saved_model = saved_model_pb2.SavedModel()
    path = os.path.join(export_dir, "saved_model.pb")
    try:
        with open(path, "rb") as f:
            saved_model.ParseFromString(f.read())
    except (OSError, DecodeError) as error:
        raise CLoaderError(f"{path} does not load: it is not a readable SavedModel ({error})") from error
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return {
                name: Signature(
                    name,
                    {key: info.name for key, info in signature.inputs.items()},
                    {key: info.name for key, info in signature.outputs.items()},
                )
                for name, signature in meta_graph.signature_def.items()
            }
    raise CLoaderError(f"{export_dir} has no MetaGraph tagged {SERVE_TAG!r}, which TF Serving loads.")


class Signature:
    def __init__(self, name: str, inputs: Mapping[str, str], outputs: Mapping[str, str]):
        self.name, self.inputs, self.outputs = name, dict(inputs), dict(outputs)


class CSavedModel:
    """A running C loader process on one SavedModel. Thread-safe; use as a context manager."""

    def __init__(self, export_dir: str, build_dir: str = DEFAULT_BUILD_DIR):
        self.export_dir = export_dir
        self.signatures = read_signatures(export_dir)
        self._lock = threading.Lock()
        self._stderr_text: Optional[str] = None
        self._process = subprocess.Popen(
            [build(build_dir), export_dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        # Read stderr as it comes, so that TensorFlow's logging never fills the pipe and blocks it.
        self._stderr_chunks: list[bytes] = []
        self._stderr_reader = threading.Thread(
            target=lambda: self._stderr_chunks.extend(iter(lambda: self._process.stderr.read1(1 << 16), b"")),
            daemon=True,
        )
        self._stderr_reader.start()

    def __enter__(self) -> "CSavedModel":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is None:
            self.close()
        else:  # the error in flight says more than the exit status
            self._stop()

    def kill(self) -> None:
        """Stops the process at once (a time limit ran out); pending reads then fail."""
        if self._process.poll() is None:
            self._process.kill()

    def close(self) -> str:
        """Ends the process; returns what it wrote to stderr. Raises CLoaderError if it failed."""
        returncode, stderr = self._stop()
        if returncode != 0:
            raise CLoaderError(f"run_saved_model exited with status {returncode}: {stderr[-4000:]}")
        return stderr

    def _stop(self) -> tuple[int, str]:
        if self._process.stdin and not self._process.stdin.closed:
            try:
                self._process.stdin.close()
            except BrokenPipeError:
                pass
        return self._process.wait(), self._stderr()

    def _stderr(self) -> str:
        """Everything the process wrote to stderr, read once it has exited."""
        if self._stderr_text is None:
            self._process.wait()
            self._stderr_reader.join()
            self._stderr_text = b"".join(self._stderr_chunks).decode(errors="replace").strip()
        return self._stderr_text

    @property
    def returncode(self) -> Optional[int]:
        return self._process.poll()

    def peak_memory_bytes(self) -> int:
        """The process's peak resident memory so far (VmHWM in /proc/<pid>/status, Linux)."""
        try:
            with open(f"/proc/{self._process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024  # "VmHWM:   123456 kB"
        except OSError as error:
            raise CLoaderError(f"cannot read run_saved_model's memory: {error}") from error
        raise CLoaderError("/proc/<pid>/status has no VmHWM line: peak memory is read on Linux only")

    def run(self, signature_name: str, inputs: Mapping[str, Sequence[bytes]]) -> dict[str, np.ndarray]:
        """Calls a signature with 1-D string inputs (by input key); returns its outputs by key.

        Raises RequestError with TensorFlow's status code when TF_SessionRun fails.
        """
        if signature_name not in self.signatures:
            raise KeyError(f"no signature {signature_name!r}; the model has {sorted(self.signatures)}")
        signature = self.signatures[signature_name]
        missing = set(signature.inputs) - set(inputs)
        if missing:
            raise KeyError(f"signature {signature_name!r} needs inputs {sorted(missing)}")
        output_keys = sorted(signature.outputs)
        request = [_u32(len(signature.inputs))]
        for key, tensor_name in sorted(signature.inputs.items()):
            values = list(inputs[key])
            request += [_str(tensor_name.encode()), _u32(len(values)), *(_str(bytes(v)) for v in values)]
        request += [_u32(len(output_keys)), *(_str(signature.outputs[key].encode()) for key in output_keys)]
        with self._lock:
            self._send(b"".join(request))
            return dict(zip(output_keys, self._receive(len(output_keys))))

    def _send(self, data: bytes) -> None:
        try:
            self._process.stdin.write(data)
            self._process.stdin.flush()
        except BrokenPipeError:
            raise CLoaderError(f"run_saved_model has exited: {self._stderr()[-4000:]}") from None

    def _receive(self, expected_outputs: int) -> list[np.ndarray]:
        code = self._read_u32()
        message = self._read(self._read_u32()).decode(errors="replace")
        if code != _OK:
            raise RequestError(code, message)
        count = self._read_u32()
        if count != expected_outputs:
            raise CLoaderError(f"run_saved_model answered {count} outputs, expected {expected_outputs}")
        return [self._read_tensor() for _ in range(count)]

    def _read_tensor(self) -> np.ndarray:
        dtype, rank = self._read_u32(), self._read_u32()
        shape = struct.unpack(f"<{rank}q", self._read(8 * rank)) if rank else ()
        if dtype == _TF_STRING:
            count = int(np.prod(shape)) if rank else 1
            values = [self._read(self._read_u32()) for _ in range(count)]
            return np.array(values, dtype=object).reshape(shape)
        size = struct.unpack("<Q", self._read(8))[0]
        if dtype not in _NUMPY_DTYPES:
            raise CLoaderError(f"run_saved_model answered a tensor of unsupported TF_DataType {dtype}")
        return np.frombuffer(self._read(size), dtype=_NUMPY_DTYPES[dtype]).reshape(shape)

    def _read_u32(self) -> int:
        return struct.unpack("<I", self._read(4))[0]

    def _read(self, size: int) -> bytes:
        data = self._process.stdout.read(size) if size else b""
        if len(data) != size:
            raise CLoaderError(f"run_saved_model stopped answering: {self._stderr()[-4000:]}")
        return data


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _str(data: bytes) -> bytes:
    return _u32(len(data)) + data


if __name__ == "__main__":
    print(build())
