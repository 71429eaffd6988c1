"""ExampleGen throughput on the sample archive beside a plain TFDS read loop over the same splits.

    tools/in-env python tools/bench/example_gen_bench.py [--images-per-class N] [--repeats R]

Both read the same prepared TFDS data (prepared once, not timed), each in its own child
process so that its peak RSS is its own; imports are not timed. Each is timed on a sample
of N and of N/4 images per class, best of R runs. Prints images/s of each and two ratios:
the whole run at N, and the marginal rate between the two samples, which discounts the
fixed start-up (Beam builds and starts a pipeline per run, about 1.5 s here).

Two more Beam pipelines give ExampleGen's floor under the transforms it is built on:
ReadFromTFDS alone, and ReadFromTFDS with only the image bytes written by Beam's TFRecord
sink; no ExampleGen can be faster than the second.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from data import sample_archive

REPO = pathlib.Path(__file__).resolve().parents[2]
# Large enough that Beam's fixed start-up cost does not hide the throughput, and that the
# marginal rate rests on 3,600 images rather than on timing noise; its own file, so the demo's
# sample is left alone. The real archive's size is --images-per-class 11631.
BENCH_IMAGES_PER_CLASS = 4000
REPEATS = 3


def run_example_gen(archive: str, data_dir: str, output_dir: str) -> int:
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import proto_utils

    from components.example_gen import executor
    from components.example_gen.component import TfdsExampleGen

    component = TfdsExampleGen(archive=archive, tfds_data_dir=data_dir)
    exec_properties = {
        key: proto_utils.proto_to_json(value) if hasattr(value, "DESCRIPTOR") else value
        for key, value in component.exec_properties.items()
    }
    artifact = standard_artifacts.Examples()
    artifact.uri = output_dir
    context = BaseBeamExecutor.Context(beam_pipeline_args=demo_beam_args(), tmp_dir=output_dir)
    executor.Executor(context).Do({}, {"examples": [artifact]}, exec_properties)
    sizes = json.loads(artifact.get_string_custom_property(executor.SPLIT_SIZES_PROPERTY))
    assert sorted(artifact_utils.decode_split_names(artifact.split_names)) == sorted(sizes)
    return sum(sizes.values())


def demo_beam_args() -> list[str]:
    """The Beam arguments the demo's local run gives every Beam component."""
    from pipeline.beam import arguments as beam_arguments
    from pipeline.config.settings import load_profile

    return beam_arguments.beam_args(load_profile("demo"))


def run_read_from_tfds(archive: str, data_dir: str, output_dir: str, write: bool = False) -> int:
    """ExampleGen's floor: the same splits through tfds.beam.ReadFromTFDS alone, counted, or
    with only their image bytes written by Beam's TFRecord sink (no tf.Example built)."""
    del archive
    import apache_beam as beam
    import tensorflow_datasets as tfds

    from components.config import TFDS_DATASET
    from components.example_gen import tfds_source
    from components.example_gen.splits import DEFAULT_SPLITS

    builder = tfds.builder(TFDS_DATASET, data_dir=data_dir)
    with beam.Pipeline(argv=demo_beam_args()) as pipeline:
        for name, expression in DEFAULT_SPLITS.items():
            records = pipeline | f"Read[{name}]" >> tfds.beam.ReadFromTFDS(
                builder, expression, decoders={"image": tfds.decode.SkipDecoding()}, read_config=tfds_source.read_config()
            )
            if write:
                _ = (records | f"Image[{name}]" >> beam.Map(lambda record: record["image"].numpy())
                     | f"Write[{name}]" >> beam.io.WriteToTFRecord(os.path.join(output_dir, name, "images")))
            else:
                _ = records | f"Count[{name}]" >> beam.combiners.Count.Globally()
    return sum(builder.info.splits[expression].num_examples for expression in DEFAULT_SPLITS.values())


def run_read_from_tfds_and_write(archive: str, data_dir: str, output_dir: str) -> int:
    return run_read_from_tfds(archive, data_dir, output_dir, write=True)


def run_tfds_read_loop(archive: str, data_dir: str, output_dir: str) -> int:
    del archive, output_dir
    import tensorflow_datasets as tfds

    from components.config import TFDS_DATASET
    from components.example_gen.splits import DEFAULT_SPLITS

    count = 0
    for expression in DEFAULT_SPLITS.values():
        dataset = tfds.load(TFDS_DATASET, split=expression, data_dir=data_dir, decoders={"image": tfds.decode.SkipDecoding()})
        for _ in dataset:
            count += 1
    return count


MEASURES = {
    "example_gen": run_example_gen,
    "tfds_read_loop": run_tfds_read_loop,
    "read_only": run_read_from_tfds,
    "read_and_write": run_read_from_tfds_and_write,
}


def measure_in_child(name: str, archive: str, data_dir: str, repeats: int) -> dict:
    command = [sys.executable, __file__, "--child", name, "--archive", archive, "--data-dir", data_dir, "--repeats", str(repeats)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode:
        sys.exit(f"{name} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def import_modules(name: str) -> None:
    """Imports what a reader needs, so that process start-up and imports are not part of its time.

    Keras is imported for both: TensorFlow imports it lazily on the first tf.data iteration
    (about 4 s here), which the ExampleGen child has already paid through TFX's imports.
    """
    import keras  # noqa: F401
    import tensorflow_datasets  # noqa: F401

    from components.config import TFDS_DATASET  # noqa: F401
    from components.example_gen.splits import DEFAULT_SPLITS  # noqa: F401

    if name != "tfds_read_loop":
        from components.example_gen import executor  # noqa: F401
        from pipeline.config import settings  # noqa: F401


def child(name: str, archive: str, data_dir: str, repeats: int) -> None:
    """Runs one reader `repeats` times, each into a fresh output folder; prints the fastest."""
    import_modules(name)
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench_examples_") as output_dir:
            start = time.perf_counter()
            images = MEASURES[name](archive, data_dir, output_dir)
            times.append(time.perf_counter() - start)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": images, "seconds": min(times), "peak_rss_mb": peak_rss_mb}))


def measure_sample(images_per_class: int, repeats: int) -> tuple[str, dict]:
    """Both readers on one sample archive (generated once, kept), over a TFDS data dir prepared untimed."""
    output = sample_archive.DEFAULT_OUTPUT.parent / f"bench-{images_per_class}" / sample_archive.DEFAULT_OUTPUT.name
    archive = str(sample_archive.ensure_sample_archive(output, images_per_class))
    with tempfile.TemporaryDirectory(prefix="bench_tfds_") as data_dir:
        measure_in_child("example_gen", archive, data_dir, repeats=1)  # prepares the TFDS data
        return archive, {name: measure_in_child(name, archive, data_dir, repeats) for name in MEASURES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-class", type=int, default=BENCH_IMAGES_PER_CLASS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--child", choices=sorted(MEASURES))
    parser.add_argument("--archive")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.archive, args.data_dir, args.repeats)
        return

    small_archive, small = measure_sample(args.images_per_class // 4, args.repeats)
    archive, results = measure_sample(args.images_per_class, args.repeats)
    print(f"ExampleGen benchmark: splits 40/10/10 %, best of {args.repeats} runs, each reader in its own process")
    print(f"{'reader':<16}{'sample':>12}{'images':>8}{'seconds':>10}{'images/s':>10}{'peak RSS MB':>13}")
    for label, runs in ((f"{args.images_per_class // 4}/class", small), (f"{args.images_per_class}/class", results)):
        for name, result in runs.items():
            rate = result["images"] / result["seconds"]
            print(f"{name:<16}{label:>12}{result['images']:>8}{result['seconds']:>10.2f}{rate:>10.1f}{result['peak_rss_mb']:>13.0f}")
    print("read_only: tfds.beam.ReadFromTFDS alone, counted; read_and_write: ReadFromTFDS, then only the image "
          "bytes written by beam.io.WriteToTFRecord; both with the demo's Beam arguments, as ExampleGen")

    def whole_rate(name):
        return results[name]["images"] / results[name]["seconds"]

    def marginal_rate(name):
        return (results[name]["images"] - small[name]["images"]) / (results[name]["seconds"] - small[name]["seconds"])

    whole = whole_rate("example_gen") / whole_rate("tfds_read_loop")
    marginal = marginal_rate("example_gen") / marginal_rate("tfds_read_loop")
    print(f"ratio ExampleGen / plain tfds read, whole run at {args.images_per_class}/class: {whole:.2f}x (target >= 0.5x)")
    print(
        f"ratio ExampleGen / plain tfds read, marginal rate between the two samples: {marginal:.2f}x "
        f"({marginal_rate('example_gen'):.0f} vs {marginal_rate('tfds_read_loop'):.0f} images/s; fixed start-up discounted)"
    )
    for name in ("read_only", "read_and_write"):
        print(
            f"floor {name} / plain tfds read: whole run {whole_rate(name) / whole_rate('tfds_read_loop'):.2f}x, "
            f"marginal {marginal_rate(name) / marginal_rate('tfds_read_loop'):.2f}x"
        )
    print(f"archives: {small_archive}, {archive}")


if __name__ == "__main__":
    main()
