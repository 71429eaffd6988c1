"""Reads a folder with two class sub-folders as tf.Examples, skipping files that are not images.

Every format PIL decodes is read (JPEG in any colour space as it is, the others re-encoded as
JPEG): PNG (8 and 16 bits), GIF, BMP, WebP, TIFF; the files it cannot decode are skipped,
counted and named.
"""

from __future__ import annotations

import io
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf
from PIL import Image

from components.example_gen import sources
from components.example_gen.examples import serialized_example
from components.example_gen.splits import SourceSplit, resolve_ranges

SKIPPED_TAG = "skipped"
SKIPPED_COUNTER = "skipped_files"


def split_files(folder: str, split_expression: str) -> list[tuple[str, int]]:
    """The (relative path, label) pairs that `split_expression` selects from the hash-ordered files."""
    files = sources.list_folder_files(folder)
    source_split = {"train": SourceSplit(num_examples=len(files), shard_lengths=[len(files)])}
    ranges = resolve_ranges({"split": split_expression}, source_split)["split"]
    return [item for _, start, end in ranges for item in files[start:end]]


def as_jpeg(data: bytes) -> bytes:
    """`data` if it is a fully decodable JPEG, else the decoded image re-encoded as JPEG.

    Raises OSError or SyntaxError if `data` is not a decodable image.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.format == "JPEG":
            return data
        buffer = io.BytesIO()
        _as_rgb(image).save(buffer, format="JPEG", quality=95)
        return buffer.getvalue()


def _as_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. PIL reads a 16-bit grayscale PNG as mode I;16 (or I), whose conversion to RGB
    clips every value above 255 to white; those are scaled to 8 bits first (16-bit colour PNGs
    PIL already reads as 8-bit RGB)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        pixels = np.asarray(image, dtype=np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(np.rint(pixels / scale), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")


class _ReadImageFile(beam.DoFn):
    """Emits a serialized tf.Example per decodable image; the paths of the others go to SKIPPED_TAG."""

    def __init__(self, folder: str):
        self._folder = folder
        self._filename_root = os.path.basename(os.path.normpath(folder))
        self._skipped = beam.metrics.Metrics.counter("TfdsExampleGen", SKIPPED_COUNTER)

    def process(self, item: tuple[str, int]):
        relative_path, label = item
        with tf.io.gfile.GFile(os.path.join(self._folder, relative_path), "rb") as opened:
            data = opened.read()
        try:
            image = as_jpeg(data)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            self._skipped.inc()
            yield beam.pvalue.TaggedOutput(SKIPPED_TAG, relative_path)
            return
        filename = os.path.join(self._filename_root, relative_path).encode("utf-8")
        yield serialized_example(image, label, filename)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def ReadFolderSplit(pipeline: beam.Pipeline, folder: str, split_expression: str, skipped_report_path: str):  # pylint: disable=invalid-name
    """The serialized tf.Examples of the files a split expression selects; writes the skipped files' paths to a report."""
    files = split_files(folder, split_expression)
    results = (
        pipeline
        | "ListFiles" >> beam.Create(files, reshuffle=len(files) > 1)
        | "ReadImages" >> beam.ParDo(_ReadImageFile(folder)).with_outputs(SKIPPED_TAG, main="examples")
    )
    _ = (
        results[SKIPPED_TAG]
        | "CollectSkipped" >> beam.combiners.ToList()
        | "WriteSkippedReport" >> beam.Map(_write_lines, skipped_report_path)
    )
    return results["examples"]


def _write_lines(lines: list[str], path: str) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as opened:
        opened.write("".join(f"{line}\n" for line in sorted(lines)))
