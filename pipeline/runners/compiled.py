"""Runs a compiled pipeline spec on this machine with Kubeflow Pipelines' own local orchestrator.

`kfp.local` walks the compiled DAG as a KFP backend does: task order, placeholder
substitution (`{{$}}`, the executor input), runtime parameters, executor outputs and artifact
passing between tasks. What it lacks is a way to run a container task without a Docker
engine: its SubprocessRunner refuses container components. `ContainerTaskAsSubprocess` runs
each container's command and arguments, unchanged, as a subprocess of this environment, which
holds what the image holds (the Dockerfile installs this project and pyproject's pins): the
command a cluster runs, our task entrypoint (pipeline/runners/task_entrypoint.py), which takes
kfp.local's executor input as it takes the backend's.

With `--in-image IMAGE` (`run_compiled(..., in_image=IMAGE)`) every container task runs as a
container of IMAGE instead, through the Docker API that Docker or `podman system service`
serves (DOCKER_HOST; else Docker's socket, else tools/image/podman-service's socket):
`ContainerTaskInImage`, kfp.local's DockerRunner with a task handler of ours, which waits for
the container's exit status itself (kfp.local's own handler removes the container as it exits,
and where that makes the status unreadable, as against Podman 4.3's API, reports success). The
container runs as the image's own user (uid 1000, as a cluster runs it); the local paths the
spec names (`compile-kubeflow --local`) and the run's root are mounted at the same absolute
paths, the ones the tasks write handed to that user (`ImageRun`).

A spec compiled with GPUs (`--set trainer.gpus=N --gpu-image IMAGE`) runs too: kfp.local
ignores a task's accelerator request and, with `--in-image`, every task runs in IMAGE, so the
Trainer trains on this machine's CPU; the run says so before it starts (`accelerator_notes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Iterator, Optional

import yaml
from google.protobuf import json_format
from kfp import local
from kfp.local import pipeline_orchestrator, status, subprocess_task_handler, task_dispatcher
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.config import rules
from pipeline.config.settings import REPO_ROOT, ConfigError, load_profile
from pipeline.results import task_outputs
from pipeline.results.record import RunResult
from pipeline.results.task_outputs import TaskRecord
from pipeline.runners import lock, progress

_PYTHON_NAMES = ("python", "python3")
_KFP_TYPES = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "STRING": str, "BOOLEAN": bool}


def load_spec(path: str):
    """The PipelineSpec proto of a compiled `.yaml` (or the `pipelineSpec` of a `.json` PipelineJob)."""
    if not os.path.isfile(path):
        raise ConfigError(f"compiled pipeline '{path}' does not exist; write one with `python -m pipeline "
                          "compile-kubeflow --local --output FILE.yaml`")
    with open(path) as f:
        document = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    document = document.get("pipelineSpec", document)
    try:
        return json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as error:
        raise ConfigError(f"'{path}' is not a compiled pipeline spec ({error})") from None


def arguments(spec, assignments: list[str]) -> dict[str, Any]:
    """The runtime parameters' defaults from the spec, with `NAME=VALUE` assignments typed by it."""
    declared = spec.root.input_definitions.parameters
    values = {}
    for name, parameter in declared.items():
        if parameter.HasField("default_value"):
            values[name] = json_format.MessageToDict(parameter.default_value)
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or name not in declared:
            raise ConfigError(f"--param '{assignment}': expected NAME=VALUE with NAME one of "
                              f"{', '.join(sorted(declared))}")
        kind = _KFP_TYPES.get(pipeline_parameter_type(declared[name]), str)
        try:
            values[name] = (raw.lower() in ("1", "true", "yes")) if kind is bool else kind(raw)
        except ValueError:
            raise ConfigError(f"--param {name}={raw}: expected {kind.__name__}") from None
    for name, parameter in declared.items():
        kind = _KFP_TYPES.get(pipeline_parameter_type(parameter))
        if kind is int and isinstance(values.get(name), float):
            values[name] = int(values[name])
    return values


def pipeline_parameter_type(parameter) -> str:
    return pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name(parameter.parameter_type)


def accelerator_notes(spec, in_image: Optional[str]) -> list[str]:
    """One line per container task of the spec that asks for accelerators: what it asks for and
    where this run runs it instead (kfp.local has no accelerators to give)."""
    where = f"in a container of {in_image}" if in_image else "as a subprocess here"
    notes = []
    for label, executor in sorted(spec.deployment_spec.fields["executors"].struct_value.fields.items()):
        container = json_format.MessageToDict(executor.struct_value).get("container", {})
        accelerator = container.get("resources", {}).get("accelerator")
        if accelerator:
            kind = accelerator.get("resourceType") or accelerator.get("type")
            count = accelerator.get("resourceCount") or accelerator.get("count")
            notes.append(f"{label.removesuffix('_executor')} asks for {count} {kind} in image {container.get('image')}; "
                         f"kfp.local has no accelerators to give, so it runs {where}, on the CPU")
    return notes


class ContainerTaskAsSubprocess:
    """kfp.local task handler: a container task's command and arguments, run as a subprocess here.

    The command's `python` is this environment's interpreter; the environment variables are
    the container's on top of this process's.
    """

    def __init__(self, image: str, full_command: list[str], pipeline_root: str, runner: Any,
                 env_vars: Optional[dict[str, str]] = None) -> None:
        self.image = image
        self.full_command = list(full_command)
        self.pipeline_root = pipeline_root
        self.env_vars = env_vars or {}

    def run(self):
        command = list(self.full_command)
        if command and command[0] in _PYTHON_NAMES:
            command[0] = sys.executable
        result = subprocess.run(command, env={**os.environ, **self.env_vars})
        return status.Status.SUCCESS if result.returncode == 0 else status.Status.FAILURE


@contextlib.contextmanager
def _recording_tasks(records: dict[str, TaskRecord]) -> Iterator[None]:
    """Times every task kfp.local dispatches, prints its progress like `run`, keeps its outputs."""
    original = task_dispatcher.run_single_task_implementation
    run_started = time.monotonic()

    def run_and_record(*args, **kwargs):
        name = _task_name(kwargs.get("component_name", args[1] if len(args) > 1 else "task"))
        print(progress.started_line(name), flush=True)
        started = time.monotonic()
        outputs, task_status = original(*args, **kwargs)
        seconds = time.monotonic() - started
        succeeded = task_status.name == "SUCCESS"
        records[name] = TaskRecord("complete" if succeeded else "failed", seconds, started - run_started, outputs)
        print(progress.ended_line(name, succeeded, seconds), flush=True)
        return outputs, task_status

    task_dispatcher.run_single_task_implementation = run_and_record
    try:
        yield
    finally:
        task_dispatcher.run_single_task_implementation = original


@contextlib.contextmanager
def _container_tasks_as_subprocesses() -> Iterator[None]:
    """kfp.local picks its SubprocessRunner's task handler by module attribute at dispatch time."""
    original = subprocess_task_handler.SubprocessTaskHandler
    subprocess_task_handler.SubprocessTaskHandler = ContainerTaskAsSubprocess
    try:
        yield
    finally:
        subprocess_task_handler.SubprocessTaskHandler = original


def _task_name(component_name: str) -> str:
    return component_name[len("comp-"):] if component_name.startswith("comp-") else component_name


def run_compiled(spec_path: str, assignments: list[str], pipeline_root: str,
                 in_image: Optional[str] = None) -> RunResult:
    """Runs the compiled spec with kfp.local under the root's lock; returns its record, the
    same as a local run's. `in_image`: every container task runs as a container of that image."""
    spec = load_spec(spec_path)
    values = arguments(spec, assignments)
    rules.check_runtime_parameters(values, load_profile("full"))
    image_run = prepare_image_run(in_image, spec, os.path.abspath(pipeline_root)) if in_image else None
    try:
        with lock.hold(os.path.abspath(pipeline_root)):
            return _run_with_kfp_local(spec, values, pipeline_root, image_run)
    finally:
        if image_run:
            image_run.client.close()


def _run_with_kfp_local(spec, values: dict[str, Any], pipeline_root: str,
                        image_run: Optional["ImageRun"] = None) -> RunResult:
    if image_run:
        runner = local.DockerRunner()
        image_run.hand_over_writable_roots()
        how = (f"every task in a container of {image_run.image} (uid {image_run.user or 'root'}, "
               f"{image_run.docker_host})")
        handler = image_run.task_handlers()
    else:
        runner = local.SubprocessRunner(use_venv=False)
        how = "container tasks as subprocesses"
        handler = _container_tasks_as_subprocesses()
    os.makedirs(pipeline_root, exist_ok=True)
    local.init(runner=runner, pipeline_root=os.path.abspath(pipeline_root), raise_on_error=False)
    print(f"[pipeline] {spec.pipeline_info.name}: kfp.local with {how}, root {pipeline_root}, "
          f"parameters {json.dumps(values, sort_keys=True)}", flush=True)
    for note in accelerator_notes(spec, image_run.image if image_run else None):
        print(f"[pipeline] {note}", flush=True)
    records: dict[str, TaskRecord] = {}
    started = time.monotonic()
    # kfp.local names every run of a spec alike; the run's id adds its local start time.
    run_id = f"{spec.pipeline_info.name}-{time.strftime('%Y%m%dT%H%M%S')}"
    with handler, _recording_tasks(records):
        pipeline_orchestrator.run_local_pipeline(pipeline_spec=spec, arguments=values)
    return task_outputs.from_task_outputs(spec.pipeline_info.name, run_id, records, list(spec.root.dag.tasks),
                                          parameters=values, wall_seconds=time.monotonic() - started)


# --- Every task in a container of the image (`run-compiled --in-image IMAGE`) ---------------

# Task parameters whose local paths the tasks write (the rest of the spec's local paths are
# read): the Evaluator reads and the Pusher writes the serving folder, ExampleGen prepares
# its TFDS data there, the Trainer checkpoints there.
WRITTEN_PARAMETERS = ("serving_dir", "push_destination", "tfds_data_dir", "checkpoint_root")
# Where tools/image/podman-service serves Podman's Docker API (tools/image/lib.sh).
PODMAN_SERVICE_SOCKET = os.path.join(REPO_ROOT, "outputs", "podman", "podman.sock")
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
_ENDED = ("exited", "dead", "stopped")  # container states after the process ended (Docker's, Podman's)
# tools/in-env's root filesystem (tools/env.sh): its marker, and where it lies on the host.
ROOTFS_MARKER = "/etc/cats-dogs-tfx-rootfs"
ROOTFS = os.path.join(REPO_ROOT, ".env", "rootfs")


@dataclasses.dataclass
class Mount:
    path: str  # as this process and the container see it
    writable: bool


@dataclasses.dataclass
class ImageRun:
    """What a run in the image needs: the Docker API's client, the image, its user, the mounts."""

    client: Any  # docker.DockerClient
    docker_host: str
    image: str  # as given
    image_id: str
    user: str  # the image's USER ("1000:1000"); empty: root
    mounts: list[Mount]

    @property
    def ids(self) -> tuple[Optional[int], Optional[int]]:
        return image_ids(self.user)

    def volumes(self) -> dict[str, dict[str, str]]:
        """docker-py's `volumes`: each path at its own path in the container, from where the
        engine sees it; parents before children."""
        selinux = "name=selinux" in (self.client.info().get("SecurityOptions") or [])
        return {engine_path(mount.path): {"bind": mount.path,
                                          "mode": ("rw" if mount.writable else "ro") + (",z" if selinux else "")}
                for mount in sorted(self.mounts, key=lambda mount: mount.path.count("/"))}

    def hand_over_writable_roots(self) -> None:
        """Makes each folder the tasks write, and what it holds, the image user's, as a cluster's
        volume would be: done as root; another user must do it (or be that uid)."""
        uid, gid = self.ids
        if uid is None:
            return
        for mount in self.mounts:
            if mount.writable:
                os.makedirs(mount.path, exist_ok=True)
        writable = [mount.path for mount in self.mounts if mount.writable]
        if os.geteuid() == 0:
            for path in writable:
                _chown_tree(path, uid, gid)
            return
        if os.geteuid() == uid:
            return
        refused = [path for path in writable if os.stat(path).st_uid != uid]
        if refused:
            raise ConfigError(
                f"the tasks run as the image's user (uid {uid}) and must write {', '.join(refused)}; "
                f"run as root or as uid {uid}, or hand them over: sudo chown -R {uid}:{gid} {' '.join(refused)}")

    @contextlib.contextmanager
    def task_handlers(self) -> Iterator[None]:
        """kfp.local picks the DockerRunner's task handler by module attribute at dispatch time."""
        from kfp.local import docker_task_handler

        volumes = self.volumes()
        original = docker_task_handler.DockerTaskHandler
        docker_task_handler.DockerTaskHandler = lambda **kwargs: ContainerTaskInImage(self, volumes, **kwargs)
        try:
            yield
        finally:
            docker_task_handler.DockerTaskHandler = original


class ContainerTaskInImage:
    """kfp.local task handler: the task's command and arguments, unchanged, in a container of
    the run's image; its exit status is the task's.

    kfp.local's own DockerTaskHandler starts the container with auto_remove and reads a
    container gone before its status was read (Podman 4.3's API) as an exit status of 0; here
    the container is removed only after its exit status is read from its state, and also when
    this process is interrupted. Its stdout and stderr are copied onto ours as it runs.
    """

    def __init__(self, image_run: ImageRun, volumes: dict, image: str, full_command: list[str],
                 pipeline_root: str, runner: Any, env_vars: Optional[dict[str, str]] = None) -> None:
        self.image_run = image_run
        self.volumes = volumes
        self.full_command = list(full_command)
        self.env_vars = env_vars or {}

    def run(self):
        container = self.image_run.client.containers.create(
            self.image_run.image_id, self.full_command, environment=self.env_vars, volumes=self.volumes,
            labels={"cats-dogs-tfx.task": "run-compiled"})
        try:
            container.start()
            streams = [threading.Thread(target=_copy_logs, args=(container, stdout), daemon=True)
                       for stdout in (True, False)]
            for stream in streams:
                stream.start()
            exit_code = _exit_code(container)
            for stream in streams:
                stream.join(timeout=30)
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)
        if exit_code != 0:
            print(f"[pipeline] the task's container ({self.image_run.image}) exited with status {exit_code}",
                  file=sys.stderr, flush=True)
        return status.Status.SUCCESS if exit_code == 0 else status.Status.FAILURE


def _exit_code(container) -> int:
    """The container's exit status once it has exited, read from its state every 0.2 s: Podman
    4.3's wait endpoint keeps a CPU core busy for as long as it waits."""
    while True:
        container.reload()
        state = container.attrs.get("State") or {}
        if state.get("Status") in _ENDED:
            if state.get("OOMKilled"):
                print("[pipeline] the task's container ran out of memory (OOMKilled)", file=sys.stderr, flush=True)
            return int(state.get("ExitCode", -1))
        time.sleep(0.2)


def _copy_logs(container, stdout: bool) -> None:
    """The container's stdout (or stderr) onto ours, as a subprocess's would be."""
    out = sys.stdout if stdout else sys.stderr
    out.flush()
    raw = getattr(out, "buffer", None)
    for chunk in container.logs(stdout=stdout, stderr=not stdout, stream=True, follow=True):
        if raw is not None:
            raw.write(chunk)
            raw.flush()
        else:
            out.write(chunk.decode(errors="replace"))
            out.flush()


def prepare_image_run(image: str, spec, pipeline_root: str) -> ImageRun:
    """Connects to the Docker API, finds `image` and the spec's local paths; ConfigError with
    the fix when no API answers or the image is missing."""
    client, docker_host = docker_client()
    try:
        found = find_image(client, image)
    except ConfigError:
        client.close()
        raise
    written, read = local_paths(spec)
    mounts = [Mount(pipeline_root, True)] + [Mount(path, True) for path in written] + \
             [Mount(path, False) for path in read]
    image_run = ImageRun(client, docker_host, image, found.id, found.attrs.get("Config", {}).get("User") or "",
                         minimal_mounts(mounts))
    try:
        image_run.ids  # a USER the folders can be handed to
    except ConfigError:
        client.close()
        raise
    return image_run


def docker_client() -> tuple[Any, str]:
    """A client of the Docker API at DOCKER_HOST; unset, Docker's socket, else the one
    tools/image/podman-service serves."""
    try:
        import docker
    except ImportError:
        raise ConfigError("--in-image needs the `docker` Python package (kfp.local's DockerRunner uses it): "
                          "pip install docker") from None
    configured = os.environ.get("DOCKER_HOST")
    candidates = [configured] if configured else [f"unix://{DEFAULT_DOCKER_SOCKET}", f"unix://{PODMAN_SERVICE_SOCKET}"]
    errors = []
    for base_url in candidates:
        if base_url.startswith("unix://") and not os.path.exists(base_url[len("unix://"):]):
            errors.append(f"{base_url}: no socket")
            continue
        client = docker.DockerClient(base_url=base_url, timeout=300)
        try:
            client.ping()
            return client, base_url
        except Exception as error:  # docker's and requests' connection errors alike
            client.close()
            errors.append(f"{base_url}: {error}")
    raise ConfigError(
        "--in-image runs each task through the Docker API, and none answers (" + "; ".join(errors) + "). "
        "Start Docker, or Podman's API service: `tools/image/podman-service start` (then "
        "`eval \"$(tools/image/podman-service env)\"`, or leave DOCKER_HOST unset to use its socket)")


def find_image(client, image: str):
    """The engine's image `image` (Podman names local images localhost/NAME)."""
    import docker

    names = [image] + ([f"localhost/{image}"] if "/" not in image.split(":")[0] else [])
    for name in names:
        try:
            return client.images.get(name)
        except docker.errors.ImageNotFound:
            continue
    raise ConfigError(f"--in-image {image}: the engine has no such image; build it with `make image` "
                      f"(IMAGE={image.removeprefix('localhost/')} to name it so)")


def image_ids(user: str) -> tuple[Optional[int], Optional[int]]:
    """(uid, gid) of an image's numeric USER ("1000:1000", "1000"); (None, None) for root."""
    if not user:
        return None, None
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise ConfigError(f"the image's USER is '{user}': --in-image needs a numeric uid[:gid] to hand "
                          "the folders the tasks write to it")
    return (None, None) if uid == "0" else (int(uid), int(gid or uid))


def local_paths(spec) -> tuple[list[str], list[str]]:
    """The spec's local absolute paths: (the folders the tasks write, what they read). Written:
    the spec's pipeline root and the WRITTEN_PARAMETERS' values; read: every other absolute
    path among the tasks' constant inputs (a file's folder is mounted)."""
    written = [spec.default_pipeline_root] if os.path.isabs(spec.default_pipeline_root or "") else []
    read = []
    for task in spec.root.dag.tasks.values():
        for name, parameter in task.inputs.parameters.items():
            if not parameter.HasField("runtime_value"):
                continue
            value = json_format.MessageToDict(parameter.runtime_value.constant)
            paths = list(_absolute_paths(value))
            (written if name in WRITTEN_PARAMETERS else read).extend(paths)
    read = [path if os.path.isdir(path) else os.path.dirname(path) for path in read]
    return sorted(set(written)), sorted({path for path in read if os.path.isdir(path)})


def _absolute_paths(value: Any) -> Iterator[str]:
    """Absolute local paths in a parameter's value, including inside JSON strings."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _absolute_paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from _absolute_paths(item)
    elif isinstance(value, str):
        if value.startswith("/") and "\n" not in value and os.path.normpath(value) != "/":
            yield os.path.normpath(value)
        elif value[:1] in "{[":
            with contextlib.suppress(ValueError):
                yield from _absolute_paths(json.loads(value))


def minimal_mounts(mounts: list[Mount]) -> list[Mount]:
    """Without a mount inside another one as writable (a read mount inside a written one is
    writable anyway)."""
    kept = []
    for mount in sorted(mounts, key=lambda mount: (mount.path, not mount.writable)):
        covered = any(_inside(mount.path, other.path) and (other.writable or not mount.writable)
                      for other in kept)
        if not covered:
            kept.append(mount)
    return kept


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def engine_path(path: str) -> str:
    """Where the container engine, on the host, sees this process's `path`. Inside tools/in-env's
    root filesystem (a chroot that bind-mounts the checkout at its own path) a path outside the
    checkout lies under the root filesystem's folder on the host."""
    if not os.path.exists(ROOTFS_MARKER):
        return path
    on_host = ROOTFS + path
    if os.path.exists(on_host) and os.path.samefile(on_host, path):
        return on_host
    return path


def _chown_tree(root: str, uid: int, gid: int) -> None:
    for folder, folders, files in os.walk(root):
        for name in [folder] + [os.path.join(folder, entry) for entry in folders + files]:
            info = os.lstat(name)
            if (info.st_uid, info.st_gid) != (uid, gid):
                os.lchown(name, uid, gid)
