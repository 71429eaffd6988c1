"""The host's container engine as the tests reach it: Docker, else Podman, run on the host.

Where the tests run inside tools/in-env's root filesystem (a chroot in a mount namespace of its
own, which sees only the checkout), host commands are run in the mount namespace of the process
that started tools/in-env (nsenter): the same `make image` and `podman run` a user types on the
host. The Docker API that `tools/image/podman-service` serves is reached from in here directly,
by its socket under the checkout's outputs/."""

import os
import re
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOTFS_MARKER = "/etc/cats-dogs-tfx-rootfs"  # tools/env.sh: present only inside the root filesystem
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_UID = "1000"
BUILD_TIMEOUT = 3600
RUN_TIMEOUT = 300

def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def _host_namespace_pid():
    """The nearest ancestor in another mount namespace: the host process that ran tools/in-env."""
    own = os.readlink("/proc/self/ns/mnt")
    pid = os.getppid()
    while pid > 1:
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") != own:
                return pid
            pid = _parent_pid(pid)
        except OSError:
            return None
    return None


def host_command(argv):
    """`argv` as run on the host, from the checkout (None: the host cannot be reached)."""
    if not os.path.exists(ROOTFS_MARKER):
        return list(argv)
    pid = _host_namespace_pid()
    if pid is None or os.geteuid() != 0:
        return None
    return ["nsenter", f"--target={pid}", "--mount", "--", "/usr/bin/env", f"--chdir={REPO_ROOT}", "-u", "VIRTUAL_ENV",
            f"PATH={HOST_PATH}", *argv]


def on_host(argv, timeout=RUN_TIMEOUT, **kwargs):
    command = host_command(argv)
    assert command is not None
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, **kwargs)


def why_no_engine():
    """None when docker or Podman can build on the host, else the reason to skip."""
    if host_command(["true"]) is None:
        return ("the tests run in tools/in-env's root filesystem but cannot reach the host's container engine "
                "(that needs root and the host process that started tools/in-env)")
    engine = on_host(["tools/image/run", "--engine"])
    if engine.returncode != 0:
        return "neither a Docker engine nor Podman can build here: " + engine.stderr.strip()[-500:]
    name = engine.stdout.strip()
    info = on_host([name, "info"])
    if info.returncode != 0:
        return f"{name} is installed but cannot run here ({name} info: {info.stderr.strip()[-300:]})"
    return None



def engine_name() -> str:
    return on_host(["tools/image/run", "--engine"]).stdout.strip()


def build_image(target: str = "image") -> str:
    """`make image` (or `make image-gpu`, `target`) with REUSE=1: reuses NAME:inputs-HASH if it
    exists, else builds it. Returns that reference."""
    built = on_host(["make", "--no-print-directory", "-s", target, "REUSE=1"], timeout=BUILD_TIMEOUT)
    assert built.returncode == 0, f"make {target} failed:\n{built.stderr[-6000:]}"
    reference = built.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\S+:inputs-[0-9a-f]{16}", reference), built.stdout
    return reference


def start_podman_service() -> tuple[str, bool]:
    """The Docker API's address that Podman's service serves, and whether it was started here
    (the caller stops it then)."""
    started = False
    if on_host(["tools/image/podman-service", "status"]).returncode != 0:
        start = on_host(["tools/image/podman-service", "start"], timeout=120)
        assert start.returncode == 0, start.stderr[-2000:]
        started = True
    return on_host(["tools/image/podman-service", "env"]).stdout.strip().split("=", 1)[1], started


def stop_podman_service() -> None:
    on_host(["tools/image/podman-service", "stop"])


def run_in_image(image, *command, run_args=()):
    """`command` in a container of `image` (removed after); `run_args` go to `docker/podman run`
    (tools/image/run splits RUN_ARGS at spaces: paths as the host sees them, without spaces)."""
    assert not any(" " in arg for arg in run_args), run_args
    return on_host(["env", f"RUN_ARGS={' '.join(run_args)}", "tools/image/run", image, *command])
