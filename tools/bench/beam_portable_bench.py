"""Each Beam step's time on Beam's portable path (`--set beam_runner=portable`: a local job
service, an external worker pool, one SDK worker process per step) against Beam in process,
on the demo's sample and on the 4,000-per-class benchmark archive; from the two sizes, each
step's fixed cost (seconds) and per-image cost (ms) on each path.

Four fresh runs of the demo profile, each in its own root: in process and portable, at both
sizes. The Trainer is cut to one phase-1 epoch and the accuracy bar to 0 in all four: it is no
Beam step, and the Evaluator's work (the same model architecture on the test split) does not
depend on how well the model trained. A step's time is its launch (driver, executor,
publishing), as in the run summary; its images are the examples it reads (ExampleGen and
StatisticsGen: every split; Transform: train and eval; the Evaluator: test). The two
services are started once, before the portable runs, and not timed.

    tools/in-env python -m tools.bench.beam_portable_bench [--images-per-class 4000]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from data import sample_archive
from pipeline.beam import services as beam_services
from pipeline.config import settings
from pipeline.runners import inputs

BENCH_IMAGES_PER_CLASS = 4000  # the benchmark archive tools/bench/example_gen_bench.py makes too
CHEAP_TRAINER = ("--set", "trainer.phase1_epochs=1", "--set", "trainer.phase2_epochs=0",
                 "--set", "evaluator.accuracy_bar=0")
# Each Beam step and the splits it reads.
BEAM_STEPS = {"TfdsExampleGen": ("train", "eval", "test"), "StatisticsGen": ("train", "eval", "test"),
              "Transform": ("train", "eval"), "Evaluator": ("test",)}


def bench_archive(images_per_class: int) -> str:
    output = sample_archive.DEFAULT_OUTPUT.parent / f"bench-{images_per_class}" / sample_archive.DEFAULT_OUTPUT.name
    return str(sample_archive.ensure_sample_archive(output, images_per_class))


def run_demo(root: str, *extra: str) -> tuple[float, dict]:
    summary_path = os.path.join(root, "summary.json")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pipeline", "run", "--profile", "demo",
                             "--pipeline-root", os.path.join(root, "pipeline"),
                             "--serving-dir", os.path.join(root, "serving"), "--summary-json", summary_path,
                             *CHEAP_TRAINER, *extra], capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"the demo run failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    with open(summary_path) as summary:
        return wall, json.load(summary)


def split_sizes(root: str) -> dict[str, int]:
    """Examples per split that ExampleGen wrote under the run's root."""
    examples = glob.glob(os.path.join(root, "pipeline", "TfdsExampleGen", "examples", "*"))[0]
    return {split: sum(1 for path in glob.glob(os.path.join(examples, f"Split-{split}", "*"))
                       for _ in tf.data.TFRecordDataset(path))
            for split in ("train", "eval", "test")}


def measure(label: str, size_args: tuple[str, ...], runner_args: tuple[str, ...]) -> dict:
    with tempfile.TemporaryDirectory(prefix="beam-portable-bench-") as root:
        wall, summary = run_demo(root, *size_args(root), *runner_args)
        sizes = split_sizes(root)
    steps = {step: {"seconds": summary["components"][step]["seconds"],
                    "images": sum(sizes[split] for split in splits)} for step, splits in BEAM_STEPS.items()}
    print(f"  {label}: {wall:.1f} s end to end, Beam steps {sum(s['seconds'] for s in steps.values()):.1f} s",
          flush=True)
    return {"wall": wall, "steps": steps}


def fit(small: dict, large: dict) -> tuple[float, float]:
    """(fixed seconds, seconds per image) of the line through the two sizes' times."""
    per_image = (large["seconds"] - small["seconds"]) / (large["images"] - small["images"])
    return small["seconds"] - per_image * small["images"], per_image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-class", type=int, default=BENCH_IMAGES_PER_CLASS)
    args = parser.parse_args()
    demo = settings.demo_profile()
    inputs.prepare_inputs(demo)  # the demo's sample and pre-trained base, made once, untimed
    archive = bench_archive(args.images_per_class)
    sizes = {
        f"demo ({demo.sample.images_per_class}/class)": lambda root: (),
        f"bench archive ({args.images_per_class}/class)": lambda root: (
            "--set", f"data.archive={archive}", "--set", f"data.tfds_data_dir={os.path.join(root, 'tfds')}"),
    }
    results: dict[tuple[str, str], dict] = {}
    with beam_services.running() as services:
        for size, size_args in sizes.items():
            print(f"{size}:", flush=True)
            results[size, "in process"] = measure("in process", size_args, ())
            results[size, "portable"] = measure("portable", size_args, tuple(services.settings()))

    print(f"\n{'Beam step':<16}{'sample':>26}{'images':>8}{'in process s':>14}{'portable s':>12}{'ratio':>8}")
    for size in sizes:
        for step in BEAM_STEPS:
            local, portable = results[size, "in process"]["steps"][step], results[size, "portable"]["steps"][step]
            print(f"{step:<16}{size:>26}{local['images']:>8}{local['seconds']:>14.1f}{portable['seconds']:>12.1f}"
                  f"{portable['seconds'] / local['seconds']:>7.2f}x")
        local_wall, portable_wall = results[size, "in process"]["wall"], results[size, "portable"]["wall"]
        print(f"{'whole run':<16}{size:>26}{'':>8}{local_wall:>14.1f}{portable_wall:>12.1f}"
              f"{portable_wall / local_wall:>7.2f}x")

    small, large = list(sizes)
    print("\nfrom the two sizes: fixed cost per step (s) and per-image cost (ms)")
    print(f"{'Beam step':<16}{'in process':>22}{'portable':>22}{'portable fixed +s':>19}{'per-image ratio':>17}")
    for step in BEAM_STEPS:
        local = fit(results[small, "in process"]["steps"][step], results[large, "in process"]["steps"][step])
        portable = fit(results[small, "portable"]["steps"][step], results[large, "portable"]["steps"][step])
        print(f"{step:<16}{local[0]:>9.1f} s {local[1] * 1000:>7.2f} ms{portable[0]:>9.1f} s {portable[1] * 1000:>7.2f} ms"
              f"{portable[0] - local[0]:>19.1f}{portable[1] / local[1]:>16.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
