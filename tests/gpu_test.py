"""Where the Trainer trains, on this machine as it is and with a stub NVIDIA driver: doctor's
findings, the host's driver reaching rootfs mode, trainer.gpus on a local run, and the notice a
run prints before it trains on the CPU."""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from support import container_host, stub_cuda_driver
from cli_test import run_cli
from pipeline.cli import exit_status
from pipeline.config import settings
from pipeline.environment import gpu, notice

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_DEVICE = "no CUDA-capable device (CUDA_ERROR_NO_DEVICE)"


def machine_has_a_driver() -> bool:
    return os.path.exists("/dev/nvidiactl") or bool(subprocess.run(
        ["ldconfig", "-p"], capture_output=True, text=True).stdout.count("libcuda.so.1"))


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    """The stub driver, built under the checkout's outputs/ so the host sees it at the same path."""
    folder = os.path.join(REPO_ROOT, "outputs", f"stub-driver-{os.getpid()}", "lib")
    path = stub_cuda_driver.build(folder)
    yield path
    shutil.rmtree(os.path.dirname(folder), ignore_errors=True)


def doctor_json(command) -> tuple[int, dict]:
    """doctor --json's exit status and findings, run as `command`."""
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip(), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout)


def test_doctor_here_says_exactly_why_there_is_no_gpu():
    if machine_has_a_driver():
        pytest.skip("this machine has an NVIDIA driver")
    result = run_cli("doctor")

    assert result.returncode == exit_status.NO_GPU
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if line[:1].isalpha())
    assert lines["TensorFlow"].strip().startswith("2.21.0, built for CUDA 12")
    assert "none found (libcuda.so.1" in lines["NVIDIA driver"]
    assert lines["GPUs TensorFlow sees"].strip() == "none"
    assert "no NVIDIA driver: libcuda.so.1 is not on the dynamic linker's path" in lines["Verdict"]
    assert "install NVIDIA's driver" in lines["Fix"]


def test_doctor_json_has_every_finding():
    result = run_cli("doctor", "--json")
    status, report = result.returncode, json.loads(result.stdout)
    assert set(report) == {"mode", "tensorflow", "cuda_libraries", "driver", "gpus", "needed", "usable", "reason", "fix"}
    assert report["mode"] == ("rootfs" if os.path.exists(gpu.ROOTFS_MARKER) else "venv")
    assert report["tensorflow"]["cudnn"] == "9" and report["tensorflow"]["cuda"].startswith("12.")
    assert set(report["cuda_libraries"]) == {"CUDA runtime", "cuBLAS", "cuDNN"}
    assert (status == 0) == report["usable"] == (report["reason"] == "")


def test_doctor_refuses_a_bad_setting():
    result = run_cli("doctor", "--set", "trainer.gpus=-2")
    assert result.returncode == exit_status.USAGE and "trainer.gpus=-2" in result.stderr


def test_driver_libs_lists_the_stub_when_it_is_the_hosts_driver(stub):
    command = container_host.host_command(stub_cuda_driver.as_host_driver(stub, ["tools/driver-libs"]))
    if command is None:
        pytest.skip("the host cannot be reached from here (needs root and the process that started tools/in-env)")
    listed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [stub]


def test_the_hosts_driver_is_reached_from_the_environment(stub):
    """Rootfs mode: tools/in-env mounts the host's driver (here the stub) into the root
    filesystem; venv mode reaches it directly. Either way doctor finds it and cuInit answers."""
    command = container_host.host_command(stub_cuda_driver.as_host_driver(
        stub, ["tools/in-env", "python", "-m", "pipeline", "doctor", "--json"]))
    if command is None:
        pytest.skip("the host cannot be reached from here (needs root and the process that started tools/in-env)")
    status, report = doctor_json(command)

    assert status == exit_status.NO_GPU
    driver = report["driver"]
    expected = f"/usr/lib/host-nvidia-driver/{stub_cuda_driver.SONAME}" if report["mode"] == "rootfs" else stub
    assert driver["path"] == expected
    assert driver["cuinit"] == NO_DEVICE and driver["cuinit_code"] == 100
    assert report["reason"] == f"driver found at {expected}, cuInit: {NO_DEVICE}"
    assert "nvidia-smi" in report["fix"]


def test_a_local_run_asking_for_gpus_it_does_not_have_is_a_usage_error(tmp_path):
    if machine_has_a_driver():
        pytest.skip("this machine has an NVIDIA driver")
    result = run_cli("run", "--set", "trainer.gpus=1", "--pipeline-root", str(tmp_path / "root"),
                     "--serving-dir", str(tmp_path / "serving"))

    assert result.returncode == exit_status.USAGE
    assert "trainer.gpus=1: no usable GPU here: no NVIDIA driver: libcuda.so.1 is not on the dynamic linker's path" \
        in result.stderr
    assert "started" not in result.stdout and not (tmp_path / "root" / "metadata").exists()


@pytest.mark.parametrize("profile, sets, sizes", [
    ("full", [], {"train": 9305, "eval": 2326, "test": 2326}),
    ("demo", [], {"train": 360, "eval": 90, "test": 90}),
    ("demo", ["sample.images_per_class=1000", "data.train_split=train[:30%]", "data.eval_split=train[30%:50%]"],
     {"train": 600, "eval": 400, "test": 200}),
])
def test_split_sizes_are_known_before_example_gen(profile, sets, sizes):
    config = settings.apply_overrides(settings.load_profile(profile), sets)
    assert notice.nominal_split_sizes(config) == sizes


def test_a_folder_or_an_archive_is_counted(tmp_path):
    from data import sample_archive

    for label in ("cats", "dogs"):
        (tmp_path / "folder" / label).mkdir(parents=True)
        for index in range(10):
            (tmp_path / "folder" / label / f"{index}.jpg").write_bytes(b"x")
    folder = settings.apply_overrides(settings.load_profile("full"), ["data.source=folder", f"data.folder={tmp_path / 'folder'}"])
    assert notice.nominal_split_sizes(folder) == {"train": 8, "eval": 2, "test": 2}
    archive = sample_archive.generate_sample_archive(tmp_path / "kagglecatsanddogs_5340.zip", images_per_class=50)
    manifest = sample_archive.read_manifest(archive)
    images = manifest["valid_images"] + sum(manifest["corrupt_entries"].values())  # TFDS skips the corrupt ones
    full = settings.apply_overrides(settings.load_profile("full"), [f"data.archive={archive}"])
    sizes = notice.nominal_split_sizes(full)  # 40%, 10%, 10%, rounded by TFDS
    assert abs(sizes["train"] - 0.4 * images) <= 1 and abs(sum(sizes.values()) - 0.6 * images) <= 1


def test_a_trainer_of_seconds_is_neither_measured_nor_announced(monkeypatch):
    if machine_has_a_driver():
        pytest.skip("this machine has an NVIDIA driver")
    monkeypatch.setattr(notice.cost, "measure", lambda *_: pytest.fail("the demo's Trainer was measured"))
    assert notice.check_trainer_device(settings.load_profile("demo")) is None


def test_the_full_profiles_work_is_measured_and_the_demos_is_not():
    for profile, measured in (("full", True), ("demo", False)):
        config = settings.load_profile(profile)
        sizes = notice.nominal_split_sizes(config)
        seconds = notice.work_gflops(config.trainer, sizes["train"], sizes["eval"]) / notice.GATE_GFLOPS_PER_S
        assert (seconds >= notice.MEASURE_ABOVE_S) is measured, (profile, seconds)


def test_the_estimate_scales_the_measured_rates_as_the_phase1_benchmark_does():
    trainer = settings.load_profile("full").trainer  # 20 + 10 epochs, 4 cached views
    rates = notice.cost.Rates(base_images_per_s=20.0, train_images_per_s=5.0)
    estimate = notice.cost.trainer_time(trainer, 1000, 200, rates)
    assert estimate.phase1_s == pytest.approx((4 * 1000 + 200) / 20.0)
    assert estimate.phase2_s == pytest.approx(10 * (1000 / 5.0 + 200 / 20.0))
    direct = notice.cost.trainer_time(dataclasses.replace(trainer, phase1_feature_cache=False), 1000, 200, rates)
    assert direct.phase1_s == pytest.approx(20 * 1200 / 20.0)


@pytest.mark.e2e
def test_a_full_profile_run_on_the_cpu_announces_it_before_example_gen_starts(tmp_path, demo_inputs):
    """The full profile's Trainer on the demo's sample (360 training images: minutes on this
    CPU): the notice with the reason and the measured estimate, then ExampleGen starts (and
    the run is stopped there with Ctrl-C)."""
    if machine_has_a_driver():
        pytest.skip("this machine has an NVIDIA driver")
    command = [sys.executable, "-m", "pipeline", "run", "--profile", "full", "--set", "sample.enabled=true",
               "--set", f"data.archive={settings.DEFAULT_SAMPLE_ARCHIVE}", "--set", "trainer.weights=none",
               "--pipeline-root", str(tmp_path / "root"), "--serving-dir", str(tmp_path / "serving")]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    # A run that outlives its Ctrl-C by a minute is killed (it would train for hours) and fails below.
    deadline = threading.Timer(60, process.kill)
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("[pipeline] TfdsExampleGen started"):
                process.send_signal(signal.SIGINT)
                deadline.start()
    finally:
        deadline.cancel()
    assert process.wait(timeout=300) == exit_status.INTERRUPTED, "\n".join(lines[-40:])
    started = next(number for number, line in enumerate(lines) if line.startswith("[pipeline] TfdsExampleGen started"))
    notice_lines = [line for line in lines[:started] if line.startswith("[pipeline] ")]
    assert "[pipeline] the Trainer trains on the CPU: no NVIDIA driver: libcuda.so.1 is not on the dynamic linker's " \
           "path" in notice_lines[-3]
    assert notice_lines[-2].startswith("[pipeline]   fix: on a machine with an NVIDIA GPU, install NVIDIA's driver")
    estimate = re.fullmatch(r"\[pipeline\]   estimated Trainer time on this machine: (\d+) min \(phase 1 .*; "
                            r"360 training and 90 validation images at ([\d.]+) base and ([\d.]+) fine-tuning "
                            r"images/s, measured now\)", notice_lines[-1])
    assert estimate, notice_lines[-1]
    base_rate, train_rate = float(estimate.group(2)), float(estimate.group(3))
    assert 0 < train_rate < base_rate  # a fine-tuning step costs more than the frozen base's forward pass
    minutes = (4 * 360 + 90) / base_rate / 60 + 10 * (360 / train_rate + 90 / base_rate) / 60
    assert abs(int(estimate.group(1)) - minutes) <= 1  # from the rates printed to one decimal
