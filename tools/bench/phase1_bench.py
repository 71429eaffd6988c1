"""Phase 1 on cached base features against the direct path, and phase 2's input and XLA options.

Run: tools/in-env python tools/bench/phase1_bench.py [--seeds 3] [--full-images 128]

All figures come from this run on this machine, side by side:
1. the full profile's shapes (Xception, 150x150, batch 32, 20 frozen-base epochs, K views,
   weights none, generated images): phase-1 wall time cached vs direct, and base images per
   second of each;
2. the demo profile (its data from a demo pipeline run's Transform, its pre-trained base,
   10 + 1 epochs): phase-1 wall time and validation accuracy after phase 1 and after phase 2,
   cached vs direct, mean and spread over seeds;
3. phase 2 (Xception, 150x150): images/s of today's input pipeline, with the parsed batches
   cached in memory, and with XLA (jit_compile);
4. the full profile's Trainer time on this machine, estimated from the rates measured above.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FULL_TRAIN, FULL_EVAL = 9305, 2326  # the recipe's split sizes
PHASE2_IMAGES = 64
PHASE2_OPTIONS = ("today", "cached input", "xla")
PHASE2_ROUNDS = 3


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--full-images", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.path.join(REPO, "outputs")) as workdir:
        full = full_shapes(args.full_images, workdir)
        demo = demo_profile(args.seeds, workdir)
        phase2 = phase2_options(workdir)
    print_report(full, demo, phase2, args)
    return 0


def epoch_clock():
    """A Keras callback: wall-clock time at the end of each epoch (both phases), from when it was made."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.started = time.monotonic()
            self.ends: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.monotonic() - self.started)

    return EpochClock()


def generated_examples(workdir: str, count: int, size: int, seed: int, name: str) -> str:
    from data import pet_images
    from components.transform import standalone

    rng = np.random.default_rng(seed)
    labels = [int(label) for label in rng.integers(0, 2, count)]
    images = [pet_images.encode_jpeg(pet_images.draw_pet(rng, label, pet_images.random_size(rng)), rng)
              for label in labels]
    _, pattern = standalone.transform_images(images, labels, os.path.join(workdir, name), size)
    return pattern


def full_shapes(images: int, workdir: str) -> dict:
    """Xception at 150x150, weights none, 20 frozen-base epochs: cached vs direct."""
    import keras

    from components.config import TrainerConfig
    from components.trainer import training
    from components.trainer import model as model_lib

    train_pattern = generated_examples(workdir, images, 150, 1, "full-train")
    eval_pattern = generated_examples(workdir, images // 4, 150, 2, "full-eval")
    base_config = TrainerConfig(base="xception", weights="none", image_size=150, batch_size=32,
                                phase1_epochs=20, phase2_epochs=0)
    result = {"train_images": images, "eval_images": images // 4, "views": base_config.phase1_augmented_views}
    for cached in (True, False):
        config = dataclasses.replace(base_config, phase1_feature_cache=cached)
        keras.utils.set_random_seed(config.seed)
        train = training.transformed_dataset([train_pattern], config, training=True)
        evaluation = training.transformed_dataset([eval_pattern], config, training=False)
        model, base = model_lib.build_model(config)
        training.calibrate_random_base(base, config, train)
        clock = epoch_clock()
        started = time.monotonic()
        training.train_two_phases(model, base, config, train, evaluation, callbacks=[clock])
        result["cached_s" if cached else "direct_s"] = time.monotonic() - started
        print(f"[bench] full shapes, phase 1 {'cached' if cached else 'direct'}: "
              f"{result['cached_s' if cached else 'direct_s']:.1f} s", flush=True)
    # Base images per second of each path, all of its phase-1 time counted (the cached
    # path's head epochs included): the rates the full profile's estimate scales.
    result["direct_images_per_s"] = 20 * (images + images // 4) / result["direct_s"]
    result["cached_images_per_s"] = (result["views"] * images + images // 4) / result["cached_s"]
    return result


def demo_transformed_examples(workdir: str) -> tuple[list[str], list[str]]:
    """The demo pipeline's own Transform output (its sample, split and 64x64 images)."""
    root = os.path.join(workdir, "demo-root")
    subprocess.run([sys.executable, "-m", "pipeline", "run", "--profile", "demo", "--pipeline-root", root,
                    "--serving-dir", os.path.join(workdir, "demo-serving"), "--set", "trainer.phase1_epochs=0",
                    "--set", "trainer.phase2_epochs=0", "--set", "evaluator.accuracy_bar=0"],
                   cwd=REPO, check=True, capture_output=True)
    split = lambda name: sorted(glob.glob(os.path.join(root, "Transform", "transformed_examples", "*",  # noqa: E731
                                                       f"Split-{name}", "*")))
    return split("train"), split("eval")


def demo_profile(seeds: int, workdir: str) -> dict:
    import keras

    from components.trainer import training
    from components.trainer import model as model_lib
    from pipeline.config.settings import load_profile

    demo = load_profile("demo").trainer
    train_files, eval_files = demo_transformed_examples(workdir)
    rows = {True: [], False: []}
    for seed in range(seeds):
        for cached in (True, False):
            config = dataclasses.replace(demo, seed=seed, phase1_feature_cache=cached)
            keras.utils.set_random_seed(seed)
            train = training.transformed_dataset(train_files, config, training=True)
            evaluation = training.transformed_dataset(eval_files, config, training=False)
            model, base = model_lib.build_model(config)
            clock = epoch_clock()
            history = training.train_two_phases(model, base, config, train, evaluation, callbacks=[clock])
            p1 = config.phase1_epochs  # the clock started just before the call: features included
            rows[cached].append({
                "phase1_s": clock.ends[p1 - 1], "phase2_s": clock.ends[-1] - clock.ends[p1 - 1],
                "val_after_phase1": history["val_binary_accuracy"][p1 - 1],
                "val_after_phase2": history["val_binary_accuracy"][-1],
            })
            print(f"[bench] demo seed {seed} {'cached' if cached else 'direct'}: {rows[cached][-1]}", flush=True)
    return {"seeds": seeds, "cached": rows[True], "direct": rows[False]}


def phase2_options(workdir: str) -> dict:
    """Fine-tuning images/s (Xception, 150x150): today's input, parsed batches cached, XLA.

    One model per option, built and traced first; then their timed epochs alternate, so that
    the machine's load changes touch every option alike; the best epoch of each counts."""
    import keras

    from components.config import TrainerConfig
    from components.trainer import training
    from components.trainer import model as model_lib

    pattern = generated_examples(workdir, PHASE2_IMAGES, 150, 3, "phase2")
    config = TrainerConfig(base="xception", weights="none", image_size=150, batch_size=32)
    runs = {}
    for option in PHASE2_OPTIONS:
        keras.utils.set_random_seed(0)
        data = training.transformed_dataset([pattern], config, training=True)
        if option == "cached input":
            data = data.cache()
        model, base = model_lib.build_model(config)
        model_lib.set_phase(base, 2)
        model_lib.compile_for_phase(model, config.phase2_learning_rate)
        model.jit_compile = option == "xla"
        model.fit(data, epochs=1, verbose=0)  # tracing (and XLA compilation), the cache filled
        runs[option] = (model, data)
    seconds = {option: [] for option in PHASE2_OPTIONS}
    for _ in range(PHASE2_ROUNDS):
        for option, (model, data) in runs.items():
            started = time.monotonic()
            model.fit(data, epochs=1, verbose=0)
            seconds[option].append(time.monotonic() - started)
    rates = {option: PHASE2_IMAGES / min(times) for option, times in seconds.items()}
    for option, rate in rates.items():
        print(f"[bench] phase 2 {option}: {rate:.2f} images/s (epochs: "
              f"{', '.join(f'{t:.1f} s' for t in seconds[option])})", flush=True)
    return rates


def spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {deviation:.4f} (min {min(values):.4f}, max {max(values):.4f})"


def print_report(full: dict, demo: dict, phase2: dict, args) -> None:
    views = full["views"]
    print(f"\nFull profile's shapes: Xception 150x150, weights none, {full['train_images']} training and "
          f"{full['eval_images']} validation images, 20 frozen-base epochs, K={views}")
    print(f"  phase 1 direct   {full['direct_s']:8.1f} s  ({full['direct_images_per_s']:.1f} base images/s, "
          f"20 x (train + validation) passes)")
    print(f"  phase 1 cached   {full['cached_s']:8.1f} s  ({full['cached_images_per_s']:.1f} base images/s, "
          f"{views} x train + 1 x validation passes, then the head's epochs)")
    print(f"  cached is {full['direct_s'] / full['cached_s']:.2f}x cheaper than direct (target: >= 5x)")

    print(f"\nDemo profile, {demo['seeds']} seeds (mean ± standard deviation):")
    for key, label in (("phase1_s", "phase-1 wall s"), ("phase2_s", "phase-2 wall s"),
                       ("val_after_phase1", "val accuracy, phase 1"), ("val_after_phase2", "val accuracy, phase 2")):
        cached = [row[key] for row in demo["cached"]]
        direct = [row[key] for row in demo["direct"]]
        print(f"  {label:<22} cached {spread(cached)}")
        print(f"  {'':<22} direct {spread(direct)}")
    gap = statistics.mean(r["val_after_phase2"] for r in demo["direct"]) - statistics.mean(
        r["val_after_phase2"] for r in demo["cached"])
    p1_ratio = statistics.mean(r["phase1_s"] for r in demo["direct"]) / statistics.mean(
        r["phase1_s"] for r in demo["cached"])
    print(f"  phase 1 cached is {p1_ratio:.2f}x cheaper; val accuracy after phase 2: direct - cached = "
          f"{100 * gap:+.2f} points (target: within 1 point)")

    print(f"\nPhase 2 (Xception 150x150, batch 32, {PHASE2_IMAGES} images per epoch, best of {PHASE2_ROUNDS} "
          "alternating epochs after a traced one):")
    for option, rate in phase2.items():
        print(f"  {option:<14} {rate:6.2f} images/s  ({rate / phase2['today']:.2f}x today's)")

    direct_p1 = 20 * (FULL_TRAIN + FULL_EVAL) / full["direct_images_per_s"]
    cached_p1 = (views * FULL_TRAIN + FULL_EVAL) / full["cached_images_per_s"]
    phase2_s = 10 * (FULL_TRAIN / phase2["today"] + FULL_EVAL / full["direct_images_per_s"])
    print(f"\nFull profile's Trainer on this machine, estimated from these rates ({FULL_TRAIN} training, "
          f"{FULL_EVAL} validation images):")
    print(f"  phase 1 direct {direct_p1 / 3600:5.2f} h, cached {cached_p1 / 3600:5.2f} h "
          f"({direct_p1 / cached_p1:.1f}x); phase 2 {phase2_s / 3600:5.2f} h; "
          f"Trainer {(cached_p1 + phase2_s) / 3600:5.2f} h against {(direct_p1 + phase2_s) / 3600:5.2f} h direct")


if __name__ == "__main__":
    sys.exit(main())
