"""A zygote for `python -m MODULE ARGS...` processes: one process imports MODULES once, then
forks a fresh child per command, which runs its module as `python -m` does. For tests that
start many processes of one module whose imports dominate their time
(tests/task_entrypoint_test.py: about 9 s of TensorFlow and TFX imports before a few seconds of
work).

    zygote = Zygote(["pipeline.task.entrypoint"], cwd=REPO_ROOT, env=env, log_dir=...)
    code, log = zygote.run("pipeline.task.entrypoint", args, "Trainer", timeout=900)
    zygote.close()

The zygote is started as `python -m tests.support.task_zygote MODULES...` with the cwd and the
environment every command gets, so its `sys.path` (the cwd first), environment and
interpreter flags are those of `python -m MODULE`. Each command is a child forked from it that:

- writes its stdout and stderr, together, to the command's log (fds 1 and 2: TensorFlow's
  C++ logging goes there too) and reads stdin from /dev/null;
- reseeds numpy's global random state, which a fresh process seeds when numpy is imported
  (Python's `random` reseeds itself after a fork);
- forgets the zygote's import of the module it runs (`python -m` runs a module it has not
  imported; what that import imported stays);
- runs `runpy.run_module(MODULE, run_name="__main__", alter_sys=True)` with `sys.argv`
  `[MODULE's file, *ARGS]`, and lets SystemExit or any exception end the interpreter as they
  end `python -m`'s: the same exit status and message or traceback (with the zygote's frames
  above the module's), then non-daemon threads joined, atexit handlers run, streams flushed.

What differs from a process started from scratch is what the imports before the fork left:
the modules already loaded, their import-time output (in the zygote's log, not the
command's), one string hash seed for every child of a zygote, and the thread id on
TensorFlow's C++ log lines (absl caches it: the zygote's); and, the child not being exec'd,
the command line `ps` shows for it (/proc's cmdline: the zygote's). Each command is still a process of
its own: nothing it does reaches the zygote or another command. tests/task_zygote_test.py runs
a probe module both ways and compares what it prints.

Fork safety. The zygote forks only while its only Python thread is the main one and it has no
native thread its imports did not leave (checked before every fork: ZygoteError otherwise).
Measured with pipeline.task.entrypoint and TFX's kubeflow_v2_run_executor imported
(TensorFlow, Beam, TFT, TFMA, TFDV, grpc, pyarrow): three native threads, none TensorFlow's
runtime's or grpc core's (they start with the first eager context or channel). Two are numpy's
and scipy's OpenBLAS worker pools, which OpenBLAS's pthread_atfork handler stops before a fork
(the zygote is left with one after its first) and starts again on next use; one is pyarrow's
jemalloc background thread, whose locks jemalloc's fork handlers take around the fork. 300
forks right after churning pyarrow's allocator, each child allocating through it and numpy,
all finished. Python warns on every fork of a process with threads; the zygote silences that
warning, having checked the threads itself.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import warnings

PROTOCOL_CHUNK = 1 << 16
ZYGOTE_MODULE = "tests.support.task_zygote"  # the checkout's top on sys.path: the cwd or PYTHONPATH


class ZygoteError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# The zygote process.

def _threads() -> set[int]:
    return {int(tid) for tid in os.listdir("/proc/self/task")}


def _serve(requests_fd: int, replies_fd: int, imported_threads: set[int]) -> dict | None:
    """Forks a child per request line; reports each child's pid and exit status. Returns the
    request in the child; None in the zygote once the requests end and every child exited."""
    children = {}  # pidfd -> (request id, pid)
    pending = b""
    open_requests = True

    def reply(**message):
        os.write(replies_fd, (json.dumps(message) + "\n").encode())

    while open_requests or children:
        readable, _, _ = select.select(([requests_fd] if open_requests else []) + list(children), [], [])
        for fd in readable:
            if fd != requests_fd:
                request_id, pid = children.pop(fd)
                _, status = os.waitpid(pid, 0)
                os.close(fd)
                reply(id=request_id, code=os.waitstatus_to_exitcode(status))
                continue
            chunk = os.read(requests_fd, PROTOCOL_CHUNK)
            open_requests = bool(chunk)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if threading.active_count() != 1 or not _threads() <= imported_threads:
                    raise ZygoteError(f"not forking with threads: Python's {threading.enumerate()}, "
                                      f"OS threads the imports did not leave {sorted(_threads() - imported_threads)}")
                sys.stdout.flush()
                sys.stderr.flush()
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:
                    for own in (requests_fd, replies_fd, *children):
                        os.close(own)
                    return request
                children[os.pidfd_open(pid)] = (request["id"], pid)
                reply(id=request["id"], pid=pid)
    return None


def _become(request: dict) -> None:
    """In the child: the command's log as stdout and stderr (stdin is already /dev/null),
    numpy's random state reseeded, the module to run forgotten, then run as __main__."""
    import runpy

    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()
    # `python -m` has not imported the module it runs: the zygote's import of it is forgotten
    # (what it imported stays), or runpy would warn that it found it in sys.modules.
    module = sys.modules.pop(request["module"], None)
    parent, _, name = request["module"].rpartition(".")
    if module is not None and parent in sys.modules and getattr(sys.modules[parent], name, None) is module:
        delattr(sys.modules[parent], name)
    sys.argv = [request["module"], *request["argv"]]  # runpy sets argv[0] to the module's file
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


def main() -> None:
    import importlib

    # The protocol on fds of its own; fd 0 /dev/null and fd 1 the zygote's log (stderr), so
    # that nothing an import prints reaches the protocol.
    requests_fd, replies_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    started = time.monotonic()
    for name in sys.argv[1:]:
        importlib.import_module(name)
    imported_threads = _threads()
    print(f"task_zygote: {', '.join(sys.argv[1:])} imported in {time.monotonic() - started:.1f} s; "
          f"{len(imported_threads)} OS threads", file=sys.stderr, flush=True)
    request = _serve(requests_fd, replies_fd, imported_threads)
    if request is not None:
        _become(request)


# ---------------------------------------------------------------------------------------------
# The client, in the test process.

class Zygote:
    """A zygote process, and commands run through it from any thread; its log and each
    command's (stdout and stderr together) in `log_dir`."""

    def __init__(self, modules: list[str], cwd: str, env: dict, log_dir: str):
        self.log_dir = log_dir
        self.log_path = os.path.join(log_dir, "zygote.log")
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen([sys.executable, "-m", ZYGOTE_MODULE, *modules], cwd=cwd, env=env,
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self._lock = threading.Lock()  # one request written at a time
        self._changed = threading.Condition()
        self._replies = {}  # request id -> {"pid", "code"}; None -> the zygote exited
        self._ids = iter(range(1, 1 << 62))
        self._reader = threading.Thread(target=self._read_replies, daemon=True)
        self._reader.start()

    def _read_replies(self):
        for line in self._process.stdout:
            message = json.loads(line)
            with self._changed:
                if "id" in message:
                    self._replies.setdefault(message["id"], {}).update(message)
                self._changed.notify_all()
        with self._changed:
            self._replies[None] = "exited"
            self._changed.notify_all()

    def _wait_for(self, request_id, key, timeout=None) -> bool:
        with self._changed:
            self._changed.wait_for(lambda: key in self._replies.get(request_id, {}) or None in self._replies, timeout)
            if key in self._replies.get(request_id, {}):
                return True
            if None not in self._replies:
                return False  # timed out
        raise ZygoteError(f"the zygote exited with {self._process.wait()}: {self.log_tail()}")

    def log_tail(self, chars=4000) -> str:
        with open(self.log_path, errors="replace") as log:
            return log.read()[-chars:]

    def run(self, module: str, argv: list[str], name: str, timeout: float) -> tuple[int, str]:
        """Runs `python -m module *argv` as a child of the zygote, its stdout and stderr to
        `log_dir`/<n>-`name`.log; returns its exit status as subprocess gives it (-N: killed by
        signal N) and its log, or raises subprocess.TimeoutExpired after killing it."""
        started = time.monotonic()
        with self._lock:
            request_id = next(self._ids)
            log_path = os.path.join(self.log_dir, f"{request_id}-{name}.log")
            self._process.stdin.write((json.dumps({"id": request_id, "module": module, "argv": argv, "log": log_path})
                                       + "\n").encode())
            self._process.stdin.flush()
        self._wait_for(request_id, "pid")
        if not self._wait_for(request_id, "code", max(timeout - (time.monotonic() - started), 0)):
            os.kill(self._replies[request_id]["pid"], signal.SIGKILL)
            self._wait_for(request_id, "code")
            raise subprocess.TimeoutExpired([module, *argv], timeout)
        with open(log_path) as log:
            return self._replies[request_id]["code"], log.read()

    def close(self):
        """Ends the zygote once its running children have exited."""
        self._process.stdin.close()
        self._process.wait()
        self._reader.join()


if __name__ == "__main__":
    main()
