"""The GPU image (`make image-gpu`: the Dockerfile with its build argument GPU=1) on a machine
without a GPU: `make image-gpu REUSE=1` builds it (or reuses one built from the same inputs, as
tests/image_test.py does the CPU image), then commands run inside it as its user, uid 1000.

- TensorFlow there is built for CUDA 12 and cuDNN 9, and the CUDA runtime, cuBLAS and cuDNN load
  from the image's site-packages, where TensorFlow's own libraries look for them (their RUNPATH);
  the CPU image holds none of the nvidia packages.
- NVIDIA's driver is the host's, mounted into a GPU container by NVIDIA's container toolkit. A
  stub libcuda.so.1 (tests/support/stub_libcuda.c: cuInit answers CUDA_ERROR_NO_DEVICE), mounted
  where the toolkit mounts the driver, stands in for it: the container's dynamic linker,
  TensorFlow and `python -m pipeline doctor` reach it.
"""

import json
import os
import shutil
import tempfile

import pytest

from pipeline.cli import exit_status
from support import stub_cuda_driver
from support.container_host import IMAGE_UID, REPO_ROOT, run_in_image

# Loads each library as TensorFlow's own dlopen finds it: in the folders of the RUNPATH of
# libtensorflow_framework.so.2 ($ORIGIN/../nvidia/<package>/lib, ...), in order; then reads
# which file the process mapped, and asks each library its version (none needs a GPU for that).
LOAD_CUDA_LIBRARIES = r"""
import ctypes, json, os, re, subprocess, sysconfig
import tensorflow as tf

framework = os.path.join(os.path.dirname(tf.__file__), "libtensorflow_framework.so.2")
dynamic = subprocess.run(["readelf", "-d", framework], capture_output=True, text=True, check=True).stdout
runpath = re.search(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", dynamic).group(1)
folders = list(dict.fromkeys(os.path.normpath(entry.replace("$ORIGIN", os.path.dirname(framework)))
                             for entry in runpath.split(":")))

def load(soname):
    for folder in folders:
        if os.path.exists(os.path.join(folder, soname)):
            return ctypes.CDLL(os.path.join(folder, soname))
    raise OSError(soname + " is in none of the folders of TensorFlow's RUNPATH")

def mapped(soname):
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if line.rstrip().endswith("/" + soname)})

version = ctypes.c_int()
cudart = load("libcudart.so.12")
runtime = (cudart.cudaRuntimeGetVersion(ctypes.byref(version)), version.value)
cublas = load("libcublas.so.12")
cublas_major = (cublas.cublasGetProperty(0, ctypes.byref(version)), version.value)  # 0: MAJOR_VERSION
cudnn = load("libcudnn.so.9")
cudnn.cudnnGetVersion.restype = ctypes.c_size_t
print(json.dumps({
    "uid": os.getuid(), "site_packages": sysconfig.get_paths()["purelib"], "build": dict(tf.sysconfig.get_build_info()),
    "cudart": runtime, "cublas_major": cublas_major, "cudnn": cudnn.cudnnGetVersion(),
    "mapped": {name: mapped(name) for name in ("libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12", "libcudnn.so.9")},
}))
"""
# Each library's wheel (pyproject.toml's gpu extra) and its folder under site-packages/nvidia/.
LIBRARY_PACKAGES = {"libcudart.so.12": "cuda_runtime", "libcublas.so.12": "cublas", "libcublasLt.so.12": "cublas",
                    "libcudnn.so.9": "cudnn"}
NVIDIA_DISTRIBUTIONS = r"""
import importlib.metadata, json, os, sysconfig
print(json.dumps({
    "distributions": sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
                            if d.metadata["Name"].lower().startswith("nvidia-")),
    "nvidia_folder": os.path.isdir(os.path.join(sysconfig.get_paths()["purelib"], "nvidia")),
}))
"""
SITE_PACKAGES = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
CUINIT = "import ctypes; print(ctypes.CDLL('libcuda.so.1').cuInit(0))"
TENSORFLOWS_GPUS = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
CUDA_ERROR_NO_DEVICE = 100


def last_json_line(result):
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def cuinit_failure(result) -> str:
    """What TensorFlow's log says cuInit answered (it logs the failure when it looks for GPUs)."""
    marker = "Failed call to cuInit: "
    [line] = [line for line in result.stderr.splitlines() if marker in line]
    return line.split(marker, 1)[1].strip()


def gpu_extra_pins():
    import tomllib

    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)["project"]["optional-dependencies"]["gpu"]


@pytest.fixture(scope="module")
def stub_driver():
    """The stub libcuda.so.1, built under the checkout's outputs/: the checkout is at the same
    path on the host, whose engine mounts it."""
    os.makedirs(os.path.join(REPO_ROOT, "outputs"), exist_ok=True)
    folder = tempfile.mkdtemp(prefix="stub-cuda-driver-", dir=os.path.join(REPO_ROOT, "outputs"))
    yield stub_cuda_driver.build(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_tensorflow_is_built_for_cuda_12_and_cudnn_9_and_loads_them_from_the_images_site_packages(gpu_image):
    found = last_json_line(run_in_image(gpu_image, "python", "-c", LOAD_CUDA_LIBRARIES))

    assert str(found["uid"]) == IMAGE_UID
    build = found["build"]
    assert build["is_cuda_build"] is True
    assert build["cuda_version"].split(".")[0] == "12" and build["cudnn_version"].split(".")[0] == "9", build
    status, runtime = found["cudart"]
    assert status == 0 and runtime // 1000 == 12, found["cudart"]  # cudaRuntimeGetVersion: 1000 * major + 10 * minor
    assert found["cublas_major"] == [0, 12]
    assert found["cudnn"] // 10000 == 9, found["cudnn"]  # cudnnGetVersion: 10000 * major + 100 * minor + patch
    site_packages = found["site_packages"]
    assert found["mapped"] == {
        soname: [f"{site_packages}/nvidia/{package}/lib/{soname}"] for soname, package in LIBRARY_PACKAGES.items()}


def test_the_gpu_image_has_exactly_the_pinned_cuda_wheels_and_the_cpu_image_none(image, gpu_image):
    gpu = last_json_line(run_in_image(gpu_image, "python", "-c", NVIDIA_DISTRIBUTIONS))
    cpu = last_json_line(run_in_image(image, "python", "-c", NVIDIA_DISTRIBUTIONS))

    pinned = sorted(pin for pin in gpu_extra_pins() if pin.startswith("nvidia-"))
    assert gpu == {"distributions": pinned, "nvidia_folder": True}
    assert cpu == {"distributions": [], "nvidia_folder": False}


def test_a_driver_mounted_as_nvidias_container_toolkit_mounts_it_is_reached(gpu_image, stub_driver):
    """The stub at /usr/lib/x86_64-linux-gnu/libcuda.so.1: the container's dynamic linker finds it
    by name, and TensorFlow's own cuInit reaches it (no device) where, without it, the driver is
    missing (another error)."""
    mount = stub_cuda_driver.container_mount(stub_driver)
    reached = run_in_image(gpu_image, "python", "-c", CUINIT, run_args=mount)
    assert reached.returncode == 0, reached.stderr[-3000:]
    assert reached.stdout.strip().splitlines()[-1] == str(CUDA_ERROR_NO_DEVICE)

    with_stub = run_in_image(gpu_image, "python", "-c", TENSORFLOWS_GPUS, run_args=mount)
    without = run_in_image(gpu_image, "python", "-c", TENSORFLOWS_GPUS)
    for result in (with_stub, without):
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().splitlines()[-1] == "0"
    # TensorFlow names the error through the driver's cuGetErrorName and cuGetErrorString (the stub's).
    assert cuinit_failure(with_stub) == "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected"
    assert "NO_DEVICE" not in cuinit_failure(without)


def doctor_in(gpu_image, run_args=()):
    result = run_in_image(gpu_image, "python", "-m", "pipeline", "doctor", "--json", run_args=run_args)
    assert result.returncode == exit_status.NO_GPU, result.stdout[-2000:] + result.stderr[-4000:]
    return json.loads(result.stdout)


def test_doctor_in_the_gpu_image_finds_the_stub_driver_and_says_it_sees_no_device(gpu_image, stub_driver):
    """What doctor says in a GPU container on a node whose driver finds no GPU: the driver's
    place, cuInit's answer, the CUDA libraries from the image's site-packages; and, with no driver
    mounted, that there is none."""
    driver_path = f"{stub_cuda_driver.CONTAINER_LIBRARY_DIR}/{stub_cuda_driver.SONAME}"
    site_packages = run_in_image(gpu_image, "python", "-c", SITE_PACKAGES).stdout.strip().splitlines()[-1]

    report = doctor_in(gpu_image, stub_cuda_driver.container_mount(stub_driver))

    assert report["mode"] == "image"
    assert report["tensorflow"]["cuda_build"] is True and report["tensorflow"]["cuda"].startswith("12.")
    assert report["driver"]["path"] == driver_path
    assert report["driver"]["cuinit"] == "no CUDA-capable device (CUDA_ERROR_NO_DEVICE)"
    assert {name: library["path"] for name, library in report["cuda_libraries"].items()} == {
        "CUDA runtime": f"{site_packages}/nvidia/cuda_runtime/lib/libcudart.so.12",
        "cuBLAS": f"{site_packages}/nvidia/cublas/lib/libcublas.so.12",
        "cuDNN": f"{site_packages}/nvidia/cudnn/lib/libcudnn.so.9",
    }
    assert report["gpus"] == [] and report["usable"] is False
    assert report["reason"] == f"driver found at {driver_path}, cuInit: no CUDA-capable device (CUDA_ERROR_NO_DEVICE)"

    without = doctor_in(gpu_image)
    assert without["driver"]["path"] is None
    assert without["reason"].startswith("no NVIDIA driver: libcuda.so.1 is not on the dynamic linker's path")
