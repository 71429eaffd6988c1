"""A small, seeded stand-in for kagglecatsanddogs_5340.zip that TFDS's cats_vs_dogs builder accepts.

It has the real archive's layout: `PetImages/Cat/<n>.jpg`, `PetImages/Dog/<n>.jpg`, a
`Thumbs.db` in each class folder and licence/readme files at the top. TFDS's builder skips
entries without a JFIF marker in their first bytes and raises unless it skipped exactly
1,738, so the sample holds exactly that many, of the real archive's kinds.

    python -m data.sample_archive --output data/generated/kagglecatsanddogs_5340.zip
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import struct
import sys
import time
import zipfile
from typing import Callable

import numpy as np
from PIL import Image

from components.config import SAMPLE_ARCHIVE_NAME
from data import generation_lock, pet_images

DEFAULT_IMAGES_PER_CLASS = 450
DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().parent / "generated" / SAMPLE_ARCHIVE_NAME
NUM_CORRUPT_ENTRIES = 1738  # TFDS's cats_vs_dogs._NUM_CORRUPT_IMAGES
CORRUPT_KINDS = ("empty", "exif_jpeg", "png", "gif", "bmp", "truncated")
# Kinds that an image decoder still reads; "empty" and "truncated" are undecodable.
DECODABLE_CORRUPT_KINDS = ("exif_jpeg", "png", "gif", "bmp")
CLASS_FOLDERS = ("Cat", "Dog")
GENERATOR_VERSION = 3
_CORRUPT_MIN_SIDE, _CORRUPT_MAX_SIDE = 48, 96
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_TOP_LEVEL_FILES = {
    "CDLA-Permissive-2.0.pdf": b"%PDF-1.4\n% Community Data License Agreement - Permissive - Version 2.0\n%%EOF\n",
    "readme[1].txt": b"Generated sample of the Kaggle Cats and Dogs dataset layout (synthetic images).\r\n",
}


def generate_sample_archive(path, images_per_class: int = DEFAULT_IMAGES_PER_CLASS, seed: int = 0) -> pathlib.Path:
    """Writes the sample archive to `path` (atomically) and its manifest beside it; returns `path`."""
    if images_per_class < 1:
        raise ValueError(f"images_per_class must be at least 1, got {images_per_class}.")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    corrupt_counts = dict.fromkeys(CORRUPT_KINDS, 0)
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(temp_path, "w", zipfile.ZIP_STORED) as archive:
            for name, data in _TOP_LEVEL_FILES.items():
                _write_entry(archive, name, data)
            for label, folder in enumerate(CLASS_FOLDERS):
                corrupt_here = NUM_CORRUPT_ENTRIES // 2 + (label < NUM_CORRUPT_ENTRIES % 2)
                _write_class_folder(archive, rng, label, folder, images_per_class, corrupt_here, corrupt_counts)
        manifest = _manifest(images_per_class, seed, corrupt_counts, temp_path.stat().st_size)
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)
    _write_json_atomically(manifest_path(path), manifest)
    return path


def ensure_sample_archive(path=DEFAULT_OUTPUT, images_per_class: int = DEFAULT_IMAGES_PER_CLASS, seed: int = 0) -> pathlib.Path:
    """Returns `path`, generating the archive only if it is missing or was made with other parameters."""
    path = pathlib.Path(path)
    with generation_lock.held(path):
        if _up_to_date(path, {"images_per_class": images_per_class, "seed": seed, "generator_version": GENERATOR_VERSION}):
            return path
        return generate_sample_archive(path, images_per_class, seed)


def _up_to_date(path: pathlib.Path, expected: dict) -> bool:
    try:
        manifest = read_manifest(path)
    except (OSError, ValueError):
        return False
    return (all(manifest.get(key) == value for key, value in expected.items()) and path.is_file()
            and path.stat().st_size == manifest.get("archive_bytes"))


def manifest_path(archive_path) -> pathlib.Path:
    archive_path = pathlib.Path(archive_path)
    return archive_path.with_name(archive_path.name + ".json")


def read_manifest(archive_path) -> dict:
    """The generation parameters and entry counts recorded beside a generated archive."""
    return json.loads(manifest_path(archive_path).read_text())


def _manifest(images_per_class: int, seed: int, corrupt_counts: dict, archive_bytes: int) -> dict:
    return {
        "images_per_class": images_per_class,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "valid_images": images_per_class * len(CLASS_FOLDERS),
        "corrupt_entries": corrupt_counts,
        "non_image_files": [f"PetImages/{folder}/Thumbs.db" for folder in CLASS_FOLDERS] + sorted(_TOP_LEVEL_FILES),
        "archive_bytes": archive_bytes,
    }


def _write_class_folder(archive, rng, label, folder, num_valid, num_corrupt, corrupt_counts) -> None:
    """Numbers valid and corrupt entries 0..n-1 in a shuffled order, as in the real archive."""
    is_corrupt = np.zeros(num_valid + num_corrupt, dtype=bool)
    is_corrupt[rng.choice(is_corrupt.size, size=num_corrupt, replace=False)] = True
    kinds = iter(rng.permutation(np.resize(np.array(CORRUPT_KINDS), num_corrupt)))
    _write_entry(archive, f"PetImages/{folder}/", b"")
    for number, corrupt in enumerate(is_corrupt):
        if corrupt:
            kind = str(next(kinds))
            data = _CORRUPT_ENCODERS[kind](rng, label)
            corrupt_counts[kind] += 1
        else:
            image = pet_images.draw_pet(rng, label, pet_images.random_size(rng))
            data = pet_images.encode_jpeg(image, rng)
        _write_entry(archive, f"PetImages/{folder}/{number}.jpg", data)
    _write_entry(archive, f"PetImages/{folder}/Thumbs.db", _thumbs_db(rng))


def _write_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.external_attr = (0o40755 << 16 | 0x10) if name.endswith("/") else (0o644 << 16)
    archive.writestr(info, data)


def _write_json_atomically(path: pathlib.Path, content: dict) -> None:
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp_path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    os.replace(temp_path, path)


def _small_pet(rng: np.random.Generator, label: int) -> Image.Image:
    return pet_images.draw_pet(rng, label, pet_images.random_size(rng, _CORRUPT_MIN_SIDE, _CORRUPT_MAX_SIDE))


def _encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _exif_jpeg(rng: np.random.Generator, label: int) -> bytes:
    """A decodable JPEG whose APP0 JFIF segment is replaced by an APP1 Exif one, as cameras write."""
    jfif = pet_images.encode_jpeg(_small_pet(rng, label), rng)
    app0_length = struct.unpack(">H", jfif[4:6])[0]
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jfif[:2] + app1 + jfif[4 + app0_length :]


def _truncated(rng: np.random.Generator, label: int) -> bytes:
    """The first part of an Exif JPEG or a PNG, cut off mid-data."""
    if rng.random() < 0.5:
        data = _exif_jpeg(rng, label)
    else:
        data = _encoded(_small_pet(rng, label), "PNG")
    return data[: int(len(data) * rng.uniform(0.05, 0.6))]


def _thumbs_db(rng: np.random.Generator) -> bytes:
    """Bytes starting like the OLE compound file Windows writes as Thumbs.db."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + rng.bytes(4088)


_CORRUPT_ENCODERS: dict[str, Callable[[np.random.Generator, int], bytes]] = {
    "empty": lambda rng, label: b"",
    "exif_jpeg": _exif_jpeg,
    "png": lambda rng, label: _encoded(_small_pet(rng, label), "PNG"),
    "gif": lambda rng, label: _encoded(_small_pet(rng, label).convert("P"), "GIF"),
    "bmp": lambda rng, label: _encoded(_small_pet(rng, label), "BMP"),
    "truncated": _truncated,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT, help="archive path to write")
    parser.add_argument("--images-per-class", type=int, default=DEFAULT_IMAGES_PER_CLASS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="regenerate even if an up-to-date archive exists")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    make = generate_sample_archive if args.force else ensure_sample_archive
    path = make(args.output, images_per_class=args.images_per_class, seed=args.seed)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB) ready in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
