"""The GPU stack as TensorFlow reaches it, checked link by link: TensorFlow's build, the NVIDIA
driver (libcuda.so.1 and its cuInit), TensorFlow's CUDA libraries (the nvidia-*-cu12 wheels of
its `and-cuda` extra), and the GPUs TensorFlow lists. The first broken link is the reason there
is no usable GPU, with its fix; `doctor` shows every link, a run shows the reason."""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import os
import re
import sys
from typing import Optional

import tensorflow as tf

from components.trainer import devices

DRIVER_LIBRARY = "libcuda.so.1"
# (what, file, the nvidia wheel's package): the libraries TensorFlow's GPU kernels need first.
CUDA_LIBRARIES = (
    ("CUDA runtime", "libcudart.so.12", "nvidia.cuda_runtime"),
    ("cuBLAS", "libcublas.so.12", "nvidia.cublas"),
    ("cuDNN", "libcudnn.so.9", "nvidia.cudnn"),
)
# CUresult codes cuInit returns (CUDA's cuda.h), in words.
CUDA_ERRORS = {
    0: "ok",
    3: "not initialized (CUDA_ERROR_NOT_INITIALIZED)",
    35: "the driver is older than this CUDA (CUDA_ERROR_INSUFFICIENT_DRIVER)",
    100: "no CUDA-capable device (CUDA_ERROR_NO_DEVICE)",
    101: "invalid device (CUDA_ERROR_INVALID_DEVICE)",
    304: "an operating-system call failed (CUDA_ERROR_OPERATING_SYSTEM)",
    803: "the driver's library and kernel module differ (CUDA_ERROR_SYSTEM_DRIVER_MISMATCH)",
    804: "forward compatibility is not supported on this device (CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE)",
    999: "unknown error (CUDA_ERROR_UNKNOWN)",
}
# Set in the project's image (Dockerfile); tools/env.sh's marker says the root filesystem.
IMAGE_ENV_VARIABLE = "CATS_DOGS_TFX_ENV"
ROOTFS_MARKER = "/etc/cats-dogs-tfx-rootfs"
# Where tools/in-env mounts the host's driver libraries in the root filesystem (tools/env.sh).
HOST_DRIVER_DIR = "/usr/lib/host-nvidia-driver"
KERNEL_MODULE_VERSION = "/proc/driver/nvidia/version"
GPU_DOCS = "docs/gpu.md"


@dataclasses.dataclass
class Driver:
    path: Optional[str] = None  # the libcuda.so.1 loaded; None: none found
    version: Optional[str] = None  # the driver's version (kernel module, else the library's file name)
    cuda_version: Optional[str] = None  # the newest CUDA the driver supports (cuDriverGetVersion)
    cuinit: str = "not called"
    cuinit_code: Optional[int] = None


@dataclasses.dataclass
class Library:
    name: str
    file: str
    path: Optional[str] = None  # where it loaded from; None: it did not load
    error: Optional[str] = None


@dataclasses.dataclass
class GpuReport:
    mode: str
    tensorflow_version: str
    cuda_build: bool
    built_for_cuda: Optional[str]
    built_for_cudnn: Optional[str]
    driver: Driver
    libraries: list[Library]
    gpus: tuple[devices.Gpu, ...]
    needed: int = 1
    reason: str = ""
    fix: str = ""

    @property
    def usable(self) -> bool:
        return not self.reason

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "tensorflow": {"version": self.tensorflow_version, "cuda_build": self.cuda_build,
                           "cuda": self.built_for_cuda, "cudnn": self.built_for_cudnn},
            "cuda_libraries": {library.name: dataclasses.asdict(library) for library in self.libraries},
            "driver": dataclasses.asdict(self.driver),
            "gpus": [{"name": gpu.name, "compute_capability": devices.capability_text(gpu.capability)}
                     for gpu in self.gpus],
            "needed": self.needed,
            "usable": self.usable,
            "reason": self.reason,
            "fix": self.fix,
        }


def probe(needed: int = 1) -> GpuReport:
    """Every link of the GPU stack, and whether `needed` GPUs are usable (the first broken
    link as the reason, with its fix, when not)."""
    build = tf.sysconfig.get_build_info()
    report = GpuReport(
        mode=environment_mode(),
        tensorflow_version=tf.__version__,
        cuda_build=bool(build.get("is_cuda_build")),
        built_for_cuda=build.get("cuda_version"),
        built_for_cudnn=build.get("cudnn_version"),
        driver=probe_driver(),
        libraries=[load_library(*library) for library in CUDA_LIBRARIES],
        gpus=devices.visible_gpus(),
        needed=max(1, needed),
    )
    report.reason, report.fix = first_broken_link(report)
    return report


def environment_mode() -> str:
    if os.environ.get(IMAGE_ENV_VARIABLE) == "image":
        return "image"
    if os.path.exists(ROOTFS_MARKER):
        return "rootfs"
    return "venv" if sys.prefix != sys.base_prefix else "system Python"


def probe_driver() -> Driver:
    try:
        library = ctypes.CDLL(DRIVER_LIBRARY)
    except OSError:
        return Driver()
    driver = Driver(path=loaded_path(DRIVER_LIBRARY.split(".so")[0] + ".so") or DRIVER_LIBRARY)
    driver.version = kernel_module_version() or version_in_file_name(driver.path)
    driver.cuda_version = driver_cuda_version(library)
    code = library.cuInit(0)
    driver.cuinit_code = code
    driver.cuinit = CUDA_ERRORS.get(code, f"error {code}")
    return driver


def loaded_path(prefix: str) -> Optional[str]:
    """The file this process has mapped whose name starts with `prefix` (e.g. libcuda.so)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[-1].strip()
            if os.path.basename(path).startswith(prefix):
                return path
    return None


def kernel_module_version() -> Optional[str]:
    try:
        with open(KERNEL_MODULE_VERSION) as version:
            match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", version.read())
    except OSError:
        return None
    return match.group(1) if match else None


def version_in_file_name(path: str) -> Optional[str]:
    """libcuda.so.550.54.14 -> 550.54.14 (the driver's installer names the library so)."""
    match = re.search(r"\.so\.(\d+\.\d+(?:\.\d+)?)$", os.path.realpath(path))
    return match.group(1) if match else None


def driver_cuda_version(library: ctypes.CDLL) -> Optional[str]:
    try:
        get_version = library.cuDriverGetVersion
    except AttributeError:
        return None
    version = ctypes.c_int(0)
    if get_version(ctypes.byref(version)) != 0:
        return None
    return f"{version.value // 1000}.{version.value % 1000 // 10}"


def load_library(name: str, file: str, package: str) -> Library:
    """Loads `file` from its nvidia wheel (where TensorFlow's own RPATH points), else from the
    dynamic linker's path (a CUDA installed on the system)."""
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec else []
    candidates = [os.path.join(folder, "lib", file) for folder in folders]
    path = next((candidate for candidate in candidates if os.path.exists(candidate)), file)
    try:
        ctypes.CDLL(path)
    except OSError as error:
        return Library(name, file, error=str(error).split(":")[-1].strip() or "not found")
    return Library(name, file, path=loaded_path(file) or path)


def first_broken_link(report: GpuReport) -> tuple[str, str]:
    """(reason, fix) for the first link that fails, ("", "") when `report.needed` GPUs are usable."""
    driver = report.driver
    if driver.path is None:
        where = " (nor on the host: tools/in-env mounts the host's driver when it finds one)" \
            if report.mode == "rootfs" else ""
        return (f"no NVIDIA driver: {DRIVER_LIBRARY} is not on the dynamic linker's path{where}",
                "on a machine with an NVIDIA GPU, install NVIDIA's driver (nvidia-smi lists the GPU); in a "
                "container, start it with NVIDIA's container toolkit (docker run --gpus all); on Kubeflow, "
                f"request GPUs for the Trainer (--set trainer.gpus=1, {GPU_DOCS})")
    if driver.cuinit_code != 0:
        return f"driver found at {driver.path}, cuInit: {driver.cuinit}", driver_fix(driver.cuinit_code)
    missing = [library for library in report.libraries if library.path is None]
    if missing or not report.cuda_build:
        what = ", ".join(f"{library.file} ({library.name})" for library in missing) or "TensorFlow's CUDA build"
        return (f"TensorFlow's CUDA libraries are not installed: {what} not found",
                "make setup GPU=1 (installs pyproject.toml's gpu extra, tensorflow[and-cuda]); on Kubeflow the "
                "Trainer runs in the GPU image (make image-gpu, compile-kubeflow --gpu-image)")
    if not report.gpus:
        return ("the driver and the CUDA libraries load, but TensorFlow lists no GPU",
                "TensorFlow's log names the cause; this build runs on compute capability 6.0 or newer")
    if len(report.gpus) < report.needed:
        return (f"{len(report.gpus)} GPU(s) usable, {report.needed} asked for (trainer.gpus={report.needed})",
                f"--set trainer.gpus={len(report.gpus)}, or a machine with {report.needed} GPUs")
    return "", ""


def driver_fix(code: Optional[int]) -> str:
    if code == 100:
        return ("the driver sees no GPU: check that nvidia-smi lists one and that /dev/nvidiactl and /dev/nvidia0 "
                "exist here (in a container: NVIDIA's container toolkit passes them)")
    if code in (35, 803, 804):
        return "install an NVIDIA driver for CUDA 12 (525 or newer) whose library matches its kernel module"
    return "check the driver's state with nvidia-smi and the kernel's log (dmesg)"


def one_line(report: GpuReport) -> str:
    """The reason and its fix, for a run's notice and a usage error."""
    return f"{report.reason}; fix: {report.fix}"
