"""End to end: the demo profile on an image folder (issue 25), one run through the CLI.

`python -m pipeline run --profile demo --set data.source=folder --set data.folder=DIR` on a
folder of generated pets with the formats users' folders hold (CMYK JPEG, 16-bit grayscale
PNG, GIF, BMP, WebP) and files that are no image at all. Before, it ended in a traceback
(the demo's sample archive with the folder source). The splits cover every file, so each
broken file is read, counted and named; few images and 2 + 0 epochs keep it short.
"""

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components import features
from data import pet_images
from pipeline.cli import exit_status
from pipeline.results import metadata as results_metadata
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("demo_inputs")]

IMAGES_PER_CLASS = 40
# The formats beside the plain JPEGs, in each class folder: {file name: encoder}.
MIXED = {
    "cmyk.jpg": lambda image: encoded(image.convert("CMYK"), "JPEG", quality=90),
    "gray16.png": lambda image: gray16_png(image),
    "palette.gif": lambda image: encoded(image.convert("P"), "GIF"),
    "plain.bmp": lambda image: encoded(image, "BMP"),
    "photo.webp": lambda image: encoded(image, "WEBP", quality=80),
}
# Files no decoder reads, by path in the folder.
BROKEN = {
    "Cat/empty.jpg": lambda image: b"",
    "Cat/truncated.jpg": lambda image: encoded(image, "JPEG")[:700],
    "Cat/notes.txt": lambda image: b"shot on the beach\n",
    "Dog/truncated.png": lambda image: encoded(image, "PNG")[:500],
    "Dog/Thumbs.db": lambda image: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000),
}
# Every file in a split: train, eval and test cover the whole folder.
ALL_FILES = ("--set", "data.train_split=train[:60%]", "--set", "data.eval_split=train[60%:80%]",
             "--set", "data.test_split=train[80%:]")
SHORT = ("--set", "trainer.phase1_epochs=2", "--set", "trainer.phase2_epochs=0", "--set", "evaluator.accuracy_bar=0")


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def gray16_png(image: Image.Image) -> bytes:
    """A 16-bit grayscale PNG of `image`, written by hand (PIL writes I;16 with its own quirks)."""
    pixels = np.asarray(image.convert("L"), np.uint16) * 257  # full 16-bit range
    height, width = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def make_pet_folder(root) -> dict[str, float]:
    """Writes the folder; returns the mean gray level of each mixed-format image, by path."""
    rng = np.random.default_rng(25)
    gray_means = {}
    for label, name in enumerate(("Cat", "Dog")):
        folder = root / name
        folder.mkdir(parents=True)
        for number in range(IMAGES_PER_CLASS):
            image = pet_images.draw_pet(rng, label, pet_images.random_size(rng, 80, 200))
            (folder / f"{number}.jpg").write_bytes(pet_images.encode_jpeg(image, rng))
        for file_name, encode in MIXED.items():
            image = pet_images.draw_pet(rng, label, (120, 90))
            (folder / file_name).write_bytes(encode(image))
            gray_means[f"{name}/{file_name}"] = float(np.asarray(image.convert("L"), np.float32).mean())
    for path, encode in BROKEN.items():
        (root / path).write_bytes(encode(pet_images.draw_pet(rng, 0, (120, 90))))
    return gray_means


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """(root, pet folder, CLI result, summary, gray means) of the one demo run on the folder."""
    root = tmp_path_factory.mktemp("folder_demo")
    folder = str(root / "pets")
    gray_means = make_pet_folder(root / "pets")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--profile", "demo", "--set", "data.source=folder",
         "--set", f"data.folder={folder}", *ALL_FILES, *SHORT, "--pipeline-root", str(root / "pipeline"),
         "--serving-dir", str(root / "serving"), "--summary-json", str(root / "summary.json")],
        capture_output=True, text=True, timeout=900)
    summary = json.loads((root / "summary.json").read_text()) if (root / "summary.json").exists() else None
    return str(root), folder, result, summary, gray_means


def metadata_store(root):
    return results_metadata.open_store(os.path.join(root, "pipeline", "metadata", "metadata.sqlite"))


def example_gen_output(root):
    [examples] = [artifact for artifact in metadata_store(root).get_artifacts_by_type("Examples")
                  if "num_skipped_files" in artifact.custom_properties]
    return examples


def read_examples(split_dir):
    records = []
    for path in sorted(tf.io.gfile.glob(os.path.join(split_dir, "*"))):
        for serialized in tf.data.TFRecordDataset(path):
            feature = tf.train.Example.FromString(serialized.numpy()).features.feature
            records.append({features.FILENAME_KEY: feature[features.FILENAME_KEY].bytes_list.value[0],
                            features.LABEL_KEY: feature[features.LABEL_KEY].int64_list.value[0],
                            features.IMAGE_KEY: feature[features.IMAGE_KEY].bytes_list.value[0]})
    return records


def test_the_demo_runs_on_a_folder_and_pushes(folder_run):
    root, _, result, summary, _ = folder_run
    console = result.stdout + result.stderr
    assert result.returncode == exit_status.PUSHED, result.stdout[-3000:] + result.stderr[-5000:]
    assert "Traceback" not in console
    for component in ("TfdsExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert f"[pipeline] {component} finished in" in console
    assert summary["blessed"] is True
    assert os.path.isfile(os.path.join(summary["pushed_model_dir"], "saved_model.pb"))
    # No sample archive was made or read: no TFDS data dir in the root, no archive given to ExampleGen.
    assert not os.path.exists(os.path.join(root, "pipeline", "tfds"))
    [example_gen] = [execution for execution in metadata_store(root).get_executions()
                     if "folder" in execution.custom_properties]
    assert example_gen.custom_properties["source"].string_value == "folder"
    properties = example_gen.custom_properties
    assert "archive" not in properties or not properties["archive"].string_value


def test_broken_files_are_counted_and_named(folder_run):
    root, folder, result, _, _ = folder_run
    examples = example_gen_output(root)
    assert examples.custom_properties["num_skipped_files"].int_value == len(BROKEN)
    [line] = [line for line in (result.stdout + result.stderr).splitlines() if "that are not decodable images" in line]
    assert f"Skipped {len(BROKEN)} files in {folder}" in line
    for path in BROKEN:
        assert repr(path) in line, line


def test_every_format_becomes_a_decodable_example(folder_run):
    root, _, _, _, gray_means = folder_run
    examples = example_gen_output(root)
    records = [record for split in ("train", "eval", "test")
               for record in read_examples(os.path.join(examples.uri, f"Split-{split}"))]
    assert len(records) == 2 * (IMAGES_PER_CLASS + len(MIXED))
    by_name = {record[features.FILENAME_KEY].decode(): record for record in records}
    for label, class_name in enumerate(("Cat", "Dog")):
        for file_name in MIXED:
            record = by_name[f"pets/{class_name}/{file_name}"]
            assert record[features.LABEL_KEY] == label
            pixels = tf.io.decode_image(record[features.IMAGE_KEY], channels=3, expand_animations=False)
            assert pixels.shape == (90, 120, 3), file_name
            # The picture itself, not washed out: a 16-bit PNG read without scaling turned white.
            gray = float(tf.reduce_mean(tf.image.rgb_to_grayscale(tf.cast(pixels, tf.float32))))
            assert abs(gray - gray_means[f"{class_name}/{file_name}"]) < 8, (file_name, gray)
