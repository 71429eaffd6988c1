"""Every task of a compiled run in a container of the image (`run-compiled --in-image IMAGE`):
kfp.local's DockerRunner with a task handler of ours (`ContainerTaskInImage`), which waits for
the container's exit status itself (kfp.local's own handler removes the container as it exits,
and where that makes the status unreadable, as against Podman 4.3's API, reports success). The
container runs as the image's own user (uid 1000, as a cluster runs it); the local paths the
spec names (`compile-kubeflow --local`) and the run's root are mounted at the same absolute
paths, the ones the tasks write handed to that user (`ImageRun`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from typing import Any, Iterator, Optional

from google.protobuf import json_format
from kfp.local import status

from pipeline.config.settings import ConfigError
from pipeline.containers.engine import docker_client, engine_path, find_image, image_ids

# Task parameters whose local paths the tasks write (the rest of the spec's local paths are
# read): the Evaluator reads and the Pusher writes the serving folder, ExampleGen prepares
# its TFDS data there, the Trainer checkpoints there.
WRITTEN_PARAMETERS = ("serving_dir", "push_destination", "tfds_data_dir", "checkpoint_root")
# Task parameters whose paths are text to show, never opened: the RunPage step's
# `config_changes` (components/run_page/spec.py, CONFIG_CHANGES_KEY), the settings the run
# changed with their values (the profile's serving folder, `--set serving_dir=<a folder that
# does not exist yet>`, whose parent would be mounted read-only over the run's own mounts).
SHOWN_PARAMETERS = ("config_changes",)
_ENDED = ("exited", "dead", "stopped")  # container states after the process ended (Docker's, Podman's)


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


def local_paths(spec) -> tuple[list[str], list[str]]:
    """The spec's local absolute paths: (the folders the tasks write, what they read). Written:
    the spec's pipeline root and the WRITTEN_PARAMETERS' values; read: every other absolute
    path among the tasks' constant inputs but the SHOWN_PARAMETERS' (a file's folder is mounted)."""
    written = [spec.default_pipeline_root] if os.path.isabs(spec.default_pipeline_root or "") else []
    read = []
    for task in spec.root.dag.tasks.values():
        for name, parameter in task.inputs.parameters.items():
            if not parameter.HasField("runtime_value") or name in SHOWN_PARAMETERS:
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


def _chown_tree(root: str, uid: int, gid: int) -> None:
    for folder, folders, files in os.walk(root):
        for name in [folder] + [os.path.join(folder, entry) for entry in folders + files]:
            info = os.lstat(name)
            if (info.st_uid, info.st_gid) != (uid, gid):
                os.lchown(name, uid, gid)
