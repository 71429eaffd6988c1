"""What a GPU asks of the rest of the machine, and what the CPU notice promises.

Run: tools/in-env python -m tools.bench.trainer_device_bench [--images 256] [--phase2-images 160] [--skip-setup]

All figures come from this run on this machine, side by side:
1. the Trainer's input path alone (the Transform's output to batches, no model: the
   transformed_dataset run_fn trains on) at 150x150, batch 32, on one core and on every core:
   images/s per core, and the host cores a GPU consuming 250 images/s (the recipe's
   fine-tuning) and 2,000 images/s (an H200 at bf16) needs;
2. the CPU notice's estimate (components/trainer/cost.py: a few batches, measured as a run
   measures them) against a measured phase-2 epoch on the full shapes (Xception, 150x150,
   batch 32, `--phase2-images` images per epoch, best of two after a traced one): the rates and
   the full profile's phase-2 time each implies;
3. `make setup` of a new environment, CPU against GPU (GPU=1), each in a folder of its own,
   pip's cache warm: time and size (skipped with --skip-setup).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from components.config import TrainerConfig
from components.trainer import cost, training
from components.trainer import model as model_lib
from pipeline.environment import notice
from tests.support import container_host
from tools.bench.phase1_bench import FULL_EVAL, FULL_TRAIN, REPO, generated_examples

GPU_RATES = {"the recipe's GPU fine-tuning": 250, "an H200 at bf16": 2000}
FULL = TrainerConfig(base="xception", weights="none", image_size=150, batch_size=32)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=256, help="transformed examples for the input path")
    parser.add_argument("--phase2-images", type=int, default=160, help="images per measured phase-2 epoch")
    parser.add_argument("--skip-setup", action="store_true", help="leave out the two environment builds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.path.join(REPO, "outputs")) as workdir:
        pattern = generated_examples(workdir, args.images, FULL.image_size, 7, "input-path")
        input_rates = {cores: input_path_rate(pattern, cores, args.images) for cores in (1, os.cpu_count())}
        phase2_pattern = generated_examples(workdir, args.phase2_images, FULL.image_size, 8, "phase2")
        notice_rates = cost.measure(FULL)
        epoch_rate = measured_phase2_rate(phase2_pattern, args.phase2_images)
    setups = {} if args.skip_setup else {build: new_environment(build) for build in ("cpu", "gpu")}
    print_report(input_rates, notice_rates, epoch_rate, setups)
    return 0


def input_path_rate(pattern: str, cores: int, images: int, rounds: int = 3) -> float:
    """Images/s of transformed_dataset with tf.data's work on `cores` threads; best of `rounds`."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = cores
    options.threading.max_intra_op_parallelism = 1
    dataset = training.transformed_dataset([pattern], FULL, training=True).with_options(options)
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        count = sum(int(images_batch.shape[0]) for images_batch, _ in dataset)
        best = max(best, count / (time.perf_counter() - started))
    assert count == images
    print(f"[bench] input path, {cores} core(s): {best:.0f} images/s", flush=True)
    return best


def measured_phase2_rate(pattern: str, images: int) -> float:
    """Fine-tuning images/s over whole epochs: phase 2 as run_fn runs it (fit on the transformed dataset)."""
    data = training.transformed_dataset([pattern], FULL, training=True)
    model, base = model_lib.build_model(FULL)
    model_lib.set_phase(base, 2)
    model_lib.compile_for_phase(model, FULL.phase2_learning_rate)
    model.fit(data, epochs=1, verbose=0)  # tracing
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - started)
    print(f"[bench] phase-2 epochs of {images} images: {', '.join(f'{s:.1f} s' for s in seconds)}", flush=True)
    return images / min(seconds)


def new_environment(build: str) -> dict:
    """`tools/setup` into a new folder (CATS_DOGS_ENV_DIR), run on the host: seconds and bytes."""
    folder = tempfile.mkdtemp(prefix=f"bench-env-{build}-", dir="/var/tmp")
    command = container_host.host_command(["env", f"CATS_DOGS_ENV_DIR={folder}", f"GPU={int(build == 'gpu')}",
                                           "tools/setup"])
    if command is None:
        raise SystemExit("the host cannot be reached from here (root and the process that started tools/in-env)")
    try:
        started = time.monotonic()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
        seconds = time.monotonic() - started
        size = subprocess.run(container_host.host_command(["du", "-sb", folder]), check=True, capture_output=True,
                              text=True).stdout.split()[0]
    finally:
        subprocess.run(container_host.host_command(["rm", "-rf", folder]), check=False)
    print(f"[bench] make setup ({build}): {seconds:.0f} s, {int(size) / 1e9:.2f} GB", flush=True)
    return {"seconds": seconds, "bytes": int(size)}


def print_report(input_rates: dict, notice_rates: cost.Rates, epoch_rate: float, setups: dict) -> None:
    one, every = input_rates[1], input_rates[max(input_rates)]
    print(f"\nThe Trainer's input path (Transform output to batches, 150x150, batch 32, no model):")
    print(f"  1 core:  {one:7.0f} images/s")
    print(f"  {max(input_rates)} cores: {every:7.0f} images/s ({every / one:.2f}x; {every / max(input_rates):.0f} "
          "images/s per core)")
    for name, rate in GPU_RATES.items():
        print(f"  {name} ({rate} images/s): {rate / one:.2f} cores at 1 core's rate")

    full = dataclasses.replace(FULL, phase1_epochs=20, phase2_epochs=10)
    by_notice = cost.trainer_time(full, FULL_TRAIN, FULL_EVAL, notice_rates)
    by_epoch = cost.trainer_time(full, FULL_TRAIN, FULL_EVAL, dataclasses.replace(notice_rates,
                                                                                train_images_per_s=epoch_rate))
    print("\nThe CPU notice's estimate against a measured phase-2 epoch (Xception, 150x150, batch 32):")
    print(f"  notice's fine-tuning rate {notice_rates.train_images_per_s:.2f} images/s (a few batches); "
          f"measured epoch {epoch_rate:.2f} images/s; ratio {notice_rates.train_images_per_s / epoch_rate:.2f}")
    print(f"  full profile's phase 2: {notice.duration(by_notice.phase2_s)} by the notice, "
          f"{notice.duration(by_epoch.phase2_s)} by the measured epoch (docs/running.md said about 9 h)")
    print(f"  full profile's Trainer by the notice: {notice.duration(by_notice.total_s)} "
          f"(phase 1 {notice.duration(by_notice.phase1_s)} at {notice_rates.base_images_per_s:.1f} base images/s)")
    if setups:
        cpu, gpu = setups["cpu"], setups["gpu"]
        print("\nA new environment, make setup (pip's cache warm):")
        print(f"  CPU: {cpu['seconds']:6.0f} s  {cpu['bytes'] / 1e9:5.2f} GB")
        print(f"  GPU: {gpu['seconds']:6.0f} s  {gpu['bytes'] / 1e9:5.2f} GB  ({gpu['seconds'] / cpu['seconds']:.2f}x the "
              f"time, {gpu['bytes'] / cpu['bytes']:.2f}x the size)")


if __name__ == "__main__":
    sys.exit(main())
