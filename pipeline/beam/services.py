"""A local Beam job service and SDK worker pool for `beam_runner=portable`: the path every
distributed Beam engine takes (the pipeline goes to a job service over Beam's Job API; SDK
workers in other processes receive the work over the Fn API), on this machine.

`running()` starts both as child processes, each in a process group of its own, and stops
them and every worker they started; `python -m pipeline beam-services` keeps them in the
foreground until Ctrl-C. Both listen on `host` and give workers addresses under that name,
never the machine's `socket.getfqdn()`, which Beam's own job service advertises and which
need not resolve (a worker then waits 60 s, dies, and the job hangs without a word).

The worker pool is ours, not Beam's `worker_pool_main`: it starts each worker with this
interpreter (Beam's runs whatever `python` is first on PATH), refuses a worker whose job
service it cannot reach within seconds, naming the address (the job then fails at once),
and waits for every worker it started (Beam's leaves one zombie per job).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from typing import Callable, Iterator, Optional

import grpc
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc, beam_job_api_pb2, beam_job_api_pb2_grpc
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import worker_handlers

from pipeline.config.settings import BEAM_SERVICES_HOST

DEFAULT_HOST = BEAM_SERVICES_HOST
STARTUP_SECONDS = 60
# How long a worker may take to reach the job service before the pool refuses to start it.
CONTROL_REACH_SECONDS = 5
STOP_SECONDS = 10
# How long the pre-flight check of a run waits for each service to answer.
PROBE_SECONDS = 5
# The line the worker pool writes to its log for each worker it starts.
WORKER_STARTED = "[worker pool] started worker"


class BeamServicesError(RuntimeError):
    """A service did not start; the message names it, its address and its log."""


class PortInUse(BeamServicesError):
    pass


@dataclasses.dataclass
class BeamServices:
    job_endpoint: str
    worker_pool: str
    log_dir: str
    processes: dict[str, subprocess.Popen]

    def settings(self) -> list[str]:
        """The `--set` arguments that run the pipeline's Beam steps on these services."""
        return ["--set", "beam_runner=portable", "--set", f"beam_job_endpoint={self.job_endpoint}",
                "--set", f"beam_worker_pool={self.worker_pool}"]

    def wait(self) -> str:
        """Blocks while both services run; the name of the one that stopped."""
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    return name.replace("_", " ")
            time.sleep(0.5)

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes.values()]

    def stop(self) -> None:
        """SIGTERM to each service (the pool stops its workers first), then SIGKILL to what is
        left of its process group; every child is waited for."""
        for name in ("worker_pool", "job_service"):
            process = self.processes.get(name)
            if process is not None:
                _stop_group(process)


@contextlib.contextmanager
def running(host: str = DEFAULT_HOST, job_port: int = 0, worker_port: int = 0,
            log_dir: Optional[str] = None) -> Iterator[BeamServices]:
    """A job service and a worker pool on `host` (port 0: any free port) while the block runs;
    their logs go to `log_dir`, or to a temporary folder removed afterwards."""
    temporary = None if log_dir else tempfile.mkdtemp(prefix="beam-services-")
    services = start(host, job_port, worker_port, log_dir or temporary)
    try:
        yield services
    finally:
        services.stop()
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def start(host: str, job_port: int, worker_port: int, log_dir: str) -> BeamServices:
    """Starts both services and waits until each has bound its port; raises PortInUse or
    BeamServicesError (nothing is left running then)."""
    for what, port, flag in (("job service", job_port, "--job-port"), ("worker pool", worker_port, "--worker-port")):
        check_port_free(host, port, what, flag)
    os.makedirs(log_dir, exist_ok=True)
    services = BeamServices("", "", log_dir, {})
    try:
        bound = _start_child(services, "job_service", serve_job_service, job_port, host)
        services.job_endpoint = _address(host, bound)
        bound = _start_child(services, "worker_pool", serve_worker_pool, worker_port, host,
                             os.path.join(log_dir, "workers.log"))
        services.worker_pool = _address(host, bound)
    except BaseException:
        services.stop()
        raise
    return services


def check_port_free(host: str, port: int, what: str, flag: str) -> None:
    if not port:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # Free but for connections closing (TIME_WAIT) counts as free, as it does for gRPC; a
        # listener does not, even one that would let gRPC share its port (SO_REUSEPORT).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(f"the {what}'s port {_address(host, port)} is not free ({error.strerror}); "
                            f"pass another with {flag} PORT, or {flag} 0 for any free port") from None


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _start_child(services: BeamServices, name: str, serve: Callable[..., None], port: int, *args: str) -> int:
    """Runs `serve(port, port_file, *args)` (a function of this module) in a child process of
    its own process group, its output in <log dir>/<name>.log; returns the port it bound,
    which it writes to port_file."""
    port_file = os.path.join(services.log_dir, f"{name}.port")
    log_path = os.path.join(services.log_dir, f"{name}.log")
    with contextlib.suppress(FileNotFoundError):
        os.remove(port_file)  # a previous run's
    code = f"from pipeline.beam import services; services.{serve.__name__}(*{(port, port_file, *args)!r})"
    with open(log_path, "ab") as log:
        # stdin is a pipe the child watches: if this process dies, however, the child ends too.
        process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    services.processes[name] = process
    deadline = time.monotonic() + STARTUP_SECONDS
    while not os.path.exists(port_file):
        if process.poll() is not None or time.monotonic() > deadline:
            raise BeamServicesError(f"the {name.replace('_', ' ')} did not start: {_last_line(log_path)} "
                                    f"(its log: {log_path})")
        time.sleep(0.1)
    with open(port_file) as file:
        return int(file.read())


def _last_line(path: str) -> str:
    with open(path, errors="replace") as file:
        lines = [line.strip() for line in file if line.strip()]
    return lines[-1] if lines else "no output"


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of its group outlived it
    process.wait()
    if process.stdin:
        process.stdin.close()


# In the child processes.


def serve_job_service(port: int, port_file: str, host: str) -> None:
    """Beam's local job service on host:port, telling workers to reach it at `host`."""
    # Private: Beam's runner hands EXTERNAL workers its address as socket.getfqdn()
    # (apache-beam 2.77.0, ExternalWorkerHandler.host_from_worker); docs/development.md lists it.
    worker_handlers.ExternalWorkerHandler.host_from_worker = lambda self: host
    servicer = _JobServicer(host)
    bound = servicer.start_grpc_server(port)
    _write_port(port_file, bound)
    try:
        _wait_for_stop()
    finally:
        servicer.stop()


class _JobServicer(local_job_service.LocalJobServicer):
    """Listens on, and names as its artifact staging endpoint, the given host (Beam's
    documented override; its default is 'localhost')."""

    def __init__(self, host: str):
        super().__init__()
        self._host = host

    def get_service_address(self):
        return self._host


def serve_worker_pool(port: int, port_file: str, host: str, workers_log: str) -> None:
    """A Beam worker pool (Beam's Fn API BeamFnExternalWorkerPool service) on host:port."""
    pool = WorkerPool(workers_log)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    bound = server.add_insecure_port(_address(host, port))
    server.start()
    _write_port(port_file, bound)
    try:
        _wait_for_stop()
    finally:
        server.stop(0)
        pool.stop_all()


class WorkerPool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    """Starts one SDK harness process per StartWorker request, as Beam's pool in process mode
    does, with this interpreter; each worker's output goes to `log_path`."""

    def __init__(self, log_path: str):
        self.log_path = log_path
        self.workers: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def StartWorker(self, request, context):  # noqa: N802 (gRPC's method name)
        control = request.control_endpoint.url
        if not channel_ready(control, CONTROL_REACH_SECONDS):
            return beam_fn_api_pb2.StartWorkerResponse(error=unreachable_control_message(control))
        code = ("from apache_beam.runners.worker.sdk_worker import SdkHarness; "
                f"SdkHarness({control!r}, worker_id={request.worker_id!r}).run()")
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT)
            log.write(f"{WORKER_STARTED} {request.worker_id}: pid {process.pid}, job service {control}\n".encode())
        with self._lock:
            self.workers[request.worker_id] = process
        threading.Thread(target=self._reap, args=(request.worker_id, process), daemon=True).start()
        return beam_fn_api_pb2.StartWorkerResponse()

    def StopWorker(self, request, context):  # noqa: N802
        with self._lock:
            process = self.workers.pop(request.worker_id, None)
        if process is not None:
            _terminate(process)
        return beam_fn_api_pb2.StopWorkerResponse()

    def stop_all(self) -> None:
        with self._lock:
            processes = list(self.workers.values())
            self.workers.clear()
        for process in processes:
            _terminate(process)

    def _reap(self, worker_id: str, process: subprocess.Popen) -> None:
        """Waits for the worker (it ends when its job does), so that it leaves no zombie."""
        process.wait()
        with self._lock:
            if self.workers.get(worker_id) is process:
                del self.workers[worker_id]


def unreachable_control_message(control: str) -> str:
    return (f"an SDK worker cannot reach the job service's control endpoint {control} within "
            f"{CONTROL_REACH_SECONDS} s: the job service gives workers that address, so it must resolve and "
            "be reachable from the worker pool's machine (`python -m pipeline beam-services` starts a job "
            "service that gives 127.0.0.1)")


def probe_job_service(address: str) -> Optional[str]:
    """Why no Beam job service answers at `address` (None when one does): asks it for its jobs."""
    return _probe(address, "a Beam job service", lambda channel: beam_job_api_pb2_grpc.JobServiceStub(channel).GetJobs(
        beam_job_api_pb2.GetJobsRequest(), timeout=PROBE_SECONDS, wait_for_ready=True))


def probe_worker_pool(address: str) -> Optional[str]:
    """Why no Beam worker pool answers at `address` (None when one does): asks it to stop a
    worker that does not exist, which every pool answers with nothing done."""
    return _probe(address, "a Beam worker pool", lambda channel: beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolStub(
        channel).StopWorker(beam_fn_api_pb2.StopWorkerRequest(worker_id="pipeline-preflight"),
                            timeout=PROBE_SECONDS, wait_for_ready=True))


def _probe(address: str, service: str, call) -> Optional[str]:
    channel = grpc.insecure_channel(address)
    try:
        call(channel)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"nothing answers at {address} within {PROBE_SECONDS} s"
        if error.code() == grpc.StatusCode.UNIMPLEMENTED:
            return f"the server at {address} answers but is not {service}"
        return f"{service} at {address} answered {error.code().name}: {error.details()}"
    finally:
        channel.close()
    return None


def channel_ready(address: str, timeout: float) -> bool:
    """Whether a gRPC server answers at `address` within `timeout` seconds."""
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _write_port(port_file: str, port: int) -> None:
    with open(port_file + ".tmp", "w") as file:
        file.write(str(port))
    os.replace(port_file + ".tmp", port_file)


def _wait_for_stop() -> None:
    """Until SIGTERM, or until the parent's end of stdin closes (the parent died)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_parent() -> None:
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    while not stop.wait(1):
        pass
