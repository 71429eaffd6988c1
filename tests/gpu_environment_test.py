"""The GPU environment `make setup GPU=1` builds: TensorFlow's CUDA 12 and cuDNN 9 libraries load
from it, TensorFlow reaches a driver through it (the stub, as the host's), and an existing
environment switches either way. Built in a folder of its own outside the checkout
(CATS_DOGS_ENV_DIR; reused while the pins are the same), so the CPU environment that runs these
tests stays as it is."""

import json
import os
import shutil
import subprocess

import pytest

from support import container_host, stub_cuda_driver

pytestmark = pytest.mark.e2e

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU_ENV_DIR = os.environ.get("CATS_DOGS_GPU_TEST_ENV", os.path.expanduser("~/.cache/cats-dogs-tfx/gpu-env"))
SETUP_TIMEOUT = 3600
NO_DEVICE = "no CUDA-capable device (CUDA_ERROR_NO_DEVICE)"
CUDA_PACKAGE_PREFIX = "nvidia-"


def in_gpu_env(argv, timeout=600, **env):
    """`argv` run on the host with the GPU environment's settings (tools/env.sh reads them)."""
    command = container_host.host_command(["env", f"CATS_DOGS_ENV_DIR={GPU_ENV_DIR}",
                                           *(f"{key}={value}" for key, value in env.items()), *argv])
    if command is None:
        pytest.skip("the host cannot be reached from here (needs root and the process that started tools/in-env)")
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def setup(gpu: str) -> str:
    done = in_gpu_env(["tools/setup"], timeout=SETUP_TIMEOUT, GPU=gpu)
    assert done.returncode == 0, done.stderr[-6000:]
    return done.stderr


def doctor(stub=None) -> dict:
    """doctor's findings in the GPU environment; with `stub`, where the stub is the host's driver."""
    argv = ["tools/in-env", "python", "-m", "pipeline", "doctor", "--json"]
    done = in_gpu_env(stub_cuda_driver.as_host_driver(stub, argv) if stub else argv)
    assert done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout)


def cuda_packages() -> list[str]:
    done = in_gpu_env(["tools/in-env", "python", "-m", "pip", "list", "--format=freeze"])
    assert done.returncode == 0, done.stderr[-2000:]
    return sorted(line.split("==")[0] for line in done.stdout.splitlines() if line.startswith(CUDA_PACKAGE_PREFIX))


@pytest.fixture(scope="module")
def gpu_env():
    """`make setup GPU=1` in GPU_ENV_DIR: built the first time, then reused (its stamp)."""
    setup("1")
    return GPU_ENV_DIR


@pytest.fixture(scope="module")
def stub():
    folder = os.path.join(REPO_ROOT, "outputs", f"stub-driver-gpu-env-{os.getpid()}", "lib")
    path = stub_cuda_driver.build(folder)
    yield path
    shutil.rmtree(os.path.dirname(folder), ignore_errors=True)


def test_tensorflow_is_built_for_cuda_12_and_cudnn_9_and_their_libraries_load_from_the_environment(gpu_env):
    report = doctor()

    assert report["tensorflow"]["cuda"].startswith("12.") and report["tensorflow"]["cudnn"] == "9"
    for name, file in (("CUDA runtime", "libcudart.so.12"), ("cuBLAS", "libcublas.so.12"), ("cuDNN", "libcudnn.so.9")):
        library = report["cuda_libraries"][name]
        assert "/site-packages/nvidia/" in (library["path"] or ""), library  # the and-cuda extra's wheels
        assert os.path.basename(library["path"]) == file, library
    assert len(cuda_packages()) == 12  # every wheel of the and-cuda extra, as pyproject.toml's gpu extra pins them


def test_tensorflow_reaches_the_hosts_driver_from_the_gpu_environment(gpu_env, stub):
    """The stub as the host's driver: TensorFlow's own cuInit call reaches it (its log says what
    the stub answered), and doctor names the driver and the reason."""
    listed = in_gpu_env(stub_cuda_driver.as_host_driver(stub, [
        "tools/in-env", "python", "-c", "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"]))
    assert listed.stdout.strip() == "0", listed.stderr[-3000:]
    assert "Failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected" in listed.stderr

    report = doctor(stub)
    assert report["mode"] == "rootfs" and report["driver"]["path"] == "/usr/lib/host-nvidia-driver/libcuda.so.1" \
        or report["mode"] == "venv" and report["driver"]["path"] == stub
    assert report["reason"] == f"driver found at {report['driver']['path']}, cuInit: {NO_DEVICE}"
    assert all(library["path"] for library in report["cuda_libraries"].values())


def test_the_cpu_environment_running_these_tests_has_no_cuda_libraries():
    build_file = os.path.join(REPO_ROOT, ".env", "gpu")
    if os.path.exists(build_file) and open(build_file).read().strip() != "cpu":
        pytest.skip("this checkout's environment was set up with GPU=1")
    done = subprocess.run(["python", "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True)
    assert [line for line in done.stdout.splitlines() if line.startswith(CUDA_PACKAGE_PREFIX)] == []


def test_an_existing_environment_switches_either_way(gpu_env):
    removed = setup("0")
    assert "removing TensorFlow's CUDA libraries (GPU=0)" in removed
    assert cuda_packages() == []
    assert all(library["path"] is None for library in doctor()["cuda_libraries"].values())

    setup("1")
    assert len(cuda_packages()) == 12
    assert all(library["path"] for library in doctor()["cuda_libraries"].values())
