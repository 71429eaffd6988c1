"""The image builds and works: `make image` builds it (or an image built from the same inputs,
tagged NAME:inputs-HASH by tools/image/build, is reused), then commands run inside it.

The container engine (Docker, else Podman) runs on the host. Where these tests run inside
tools/in-env's root filesystem (a chroot in a mount namespace of its own, which sees only the
checkout), host commands are run in the mount namespace of the process that started
tools/in-env (nsenter): the same `make image` and `podman run` a user types on the host.
The Docker API that `tools/image/podman-service` serves is reached from in here directly, by
its socket under the checkout's outputs/."""

import importlib.metadata
import os
import re
import subprocess

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOTFS_MARKER = "/etc/cats-dogs-tfx-rootfs"  # tools/env.sh: present only inside the root filesystem
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMPORTS = "import tfx, tensorflow, ml_metadata, tensorflow_data_validation, pipeline, components"
IMAGE_UID = "1000"
BUILD_TIMEOUT = 3600
RUN_TIMEOUT = 300
# Compiled in the image against the TensorFlow wheel's C API, as pipeline/serving's C loader is.
C_API_PROGRAM = r"""
#include <stdio.h>
#include <tensorflow/c/c_api.h>
int main(void) { printf("TF_Version %s\n", TF_Version()); return 0; }
"""
COMPILE_AND_RUN = (
    'tf=$(python -c "import importlib.util as u; print(u.find_spec(\'tensorflow\').submodule_search_locations[0])") '
    '&& printf "%s" "$1" > /tmp/tf_version.c && cc -std=c11 -Wall -Werror /tmp/tf_version.c -o /tmp/tf_version -I"$tf/include" '
    '-L"$tf" -l:libtensorflow_cc.so.2 -l:libtensorflow_framework.so.2 -Wl,-rpath,"$tf" && /tmp/tf_version'
)


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


def _why_no_engine():
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


@pytest.fixture(scope="module")
def engine():
    reason = _why_no_engine()
    if reason:
        pytest.skip(reason)
    return on_host(["tools/image/run", "--engine"]).stdout.strip()


@pytest.fixture(scope="module")
def image(engine):
    """`make image` with REUSE=1: reuses NAME:inputs-HASH if it exists, else builds it.
    Returns that reference."""
    built = on_host(["make", "--no-print-directory", "-s", "image", "REUSE=1"], timeout=BUILD_TIMEOUT)
    assert built.returncode == 0, f"make image failed:\n{built.stderr[-6000:]}"
    reference = built.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\S+:inputs-[0-9a-f]{16}", reference), built.stdout
    return reference


def run_in_image(image, *command):
    return on_host(["tools/image/run", image, *command])


def test_the_stack_and_the_project_import_in_the_image(image):
    result = run_in_image(image, "python", "-c", f"{IMPORTS}; print('imported')")
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().splitlines()[-1] == "imported"


def test_the_image_runs_as_its_numeric_non_root_user(image):
    result = run_in_image(image, "id", "-u")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == IMAGE_UID


def test_the_user_writes_its_home_the_default_outputs_and_kfps_local_paths(image):
    """TFDS and Keras caches, the pipeline's default outputs, and KFP's launcher's /gcs, /minio and
    /s3 mirrors of artifact URIs, all as the image's user."""
    paths = ["$HOME/.keras", "/pipeline/outputs/x", "/pipeline/serving_model/x", "/pipeline/data/generated/x",
             "/gcs/bucket/x", "/minio/bucket/x", "/s3/bucket/x"]
    script = " && ".join(f"mkdir -p {path}" for path in paths) + " && echo written"
    result = run_in_image(image, "sh", "-c", script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "written"


def test_a_c_compiler_builds_against_tensorflows_c_api_in_the_image(image):
    """What the TF Serving check does when it runs: compile C against TensorFlow's C API."""
    script = f"command -v cc >&2 && command -v gcc >&2 && command -v g++ >&2 && {COMPILE_AND_RUN}"
    result = run_in_image(image, "sh", "-c", script, "sh", C_API_PROGRAM)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip() == f"TF_Version {importlib.metadata.version('tensorflow')}"


def test_the_docker_api_lists_and_runs_the_image(engine, image):
    """What kfp.local's DockerRunner needs: the image through Docker's API (the `docker` Python
    package), served by `podman system service` where Podman is the engine."""
    docker = pytest.importorskip("docker")
    started = False
    if engine == "podman":
        status = on_host(["tools/image/podman-service", "status"])
        if status.returncode != 0:
            start = on_host(["tools/image/podman-service", "start"], timeout=120)
            assert start.returncode == 0, start.stderr[-2000:]
            started = True
        docker_host = on_host(["tools/image/podman-service", "env"]).stdout.strip().split("=", 1)[1]
        client = docker.DockerClient(base_url=docker_host)
    else:
        client = docker.from_env()
    try:
        tags = {tag for listed in client.images.list() for tag in listed.tags}
        assert image in tags or image.removeprefix("localhost/") in tags, sorted(tags)
        output = client.containers.run(image, ["id", "-u"], remove=True, stderr=False)
        assert output.decode().strip() == IMAGE_UID
    finally:
        client.close()
        if started:
            on_host(["tools/image/podman-service", "stop"])
