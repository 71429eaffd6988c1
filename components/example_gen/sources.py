"""Checks and fingerprints of the two input sources: a cats_vs_dogs archive and an image folder.

Everything here runs before any Beam work, so bad input fails fast with a message naming
the input and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from typing import Optional

from components.config import SAMPLE_ARCHIVE_NAME, TFDS_DATASET
from components.example_gen import splits as splits_lib

SOURCE_TFDS = "tfds"
SOURCE_FOLDER = "folder"
SOURCES = (SOURCE_TFDS, SOURCE_FOLDER)
ARCHIVE_URL = (
    "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/" + SAMPLE_ARCHIVE_NAME
)
REAL_ARCHIVE_SIZE = 824_887_076
REAL_ARCHIVE_SHA256 = "b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9"
ARCHIVE_ROOT = "PetImages/"
SAMPLE_HINT = "generate a sample with `python -m data.sample_archive --output PATH`"


def check_source_arguments(source: str, archive: Optional[str], folder: Optional[str]) -> None:
    if source not in SOURCES:
        raise ValueError(f"source={source!r} is not one of {SOURCES}.")
    if source == SOURCE_TFDS and folder:
        raise ValueError(f"folder={folder!r} is only read with source='folder'; drop it or set source='folder'.")
    if source == SOURCE_FOLDER and archive:
        raise ValueError(f"archive={archive!r} is only read with source='tfds'; drop it or set source='tfds'.")
    if source == SOURCE_FOLDER and not folder:
        raise ValueError("source='folder' needs folder=PATH, a folder with exactly two class sub-folders.")


def check_archive(archive: str) -> None:
    """Raises ValueError unless `archive` is a zip holding a PetImages/ folder."""
    if not os.path.isfile(archive):
        raise ValueError(
            f"Archive {archive!r} does not exist. Pass the path of {SAMPLE_ARCHIVE_NAME} "
            f"(download it from {ARCHIVE_URL}, or {SAMPLE_HINT}), or archive=None to let TFDS download it."
        )
    if not zipfile.is_zipfile(archive):
        raise ValueError(f"Archive {archive!r} is not a zip file. Pass {SAMPLE_ARCHIVE_NAME} from {ARCHIVE_URL}.")
    with zipfile.ZipFile(archive) as opened:
        if not any(name.startswith(ARCHIVE_ROOT) for name in opened.namelist()):
            raise ValueError(
                f"Archive {archive!r} has no {ARCHIVE_ROOT} folder, so it is not {SAMPLE_ARCHIVE_NAME}. "
                f"Pass the real archive from {ARCHIVE_URL}, or {SAMPLE_HINT}."
            )


def check_archive_checksum(archive: str) -> None:
    """Raises ValueError unless `archive` has the real archive's size and sha256."""
    size = os.path.getsize(archive)
    if size == REAL_ARCHIVE_SIZE and _sha256(archive) == REAL_ARCHIVE_SHA256:
        return
    raise ValueError(
        f"Archive {archive!r} is not the original {SAMPLE_ARCHIVE_NAME} (expected {REAL_ARCHIVE_SIZE:,} bytes "
        f"and sha256 {REAL_ARCHIVE_SHA256}; it has {size:,} bytes). Download it again from {ARCHIVE_URL}, or "
        "set validate_checksum=False for a sample or repackaged archive."
    )


def list_class_folders(folder: str) -> list[str]:
    """The two class sub-folder names, sorted: their index is the label."""
    if not os.path.isdir(folder):
        raise ValueError(
            f"Folder {folder!r} does not exist. Pass a folder with exactly two class sub-folders, "
            f"e.g. the PetImages/ folder extracted from {SAMPLE_ARCHIVE_NAME}."
        )
    classes = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))
    if len(classes) != 2:
        raise ValueError(
            f"Folder {folder!r} has {len(classes)} class sub-folders {classes}; it needs exactly two "
            "(e.g. Cat/ and Dog/), one per label. Move the images into two sub-folders."
        )
    for name in classes:
        if not _files_in(os.path.join(folder, name)):
            raise ValueError(f"Class folder {os.path.join(folder, name)!r} is empty. Put that class's images in it.")
    return classes


def list_folder_files(folder: str) -> list[tuple[str, int]]:
    """(path relative to `folder`, label) of every file in the class folders, in a fixed hash order.

    Ordering by a hash of the path spreads both classes evenly over the positions that the
    split expressions slice, and keeps each file's split stable when other files are added.
    """
    files = [
        (os.path.join(name, file_name), label)
        for label, name in enumerate(list_class_folders(folder))
        for file_name in _files_in(os.path.join(folder, name))
    ]
    return sorted(files, key=lambda item: hashlib.sha256(item[0].encode("utf-8")).hexdigest())


def archive_source_split(archive: str) -> dict[str, splits_lib.SourceSplit]:
    """The "train" split an archive holds at most: its JPEG files under PetImages/ (TFDS skips
    the unreadable ones, so the split it prepares may be a little smaller)."""
    with zipfile.ZipFile(archive) as opened:
        count = sum(1 for name in opened.namelist() if name.startswith(ARCHIVE_ROOT) and name.lower().endswith(".jpg"))
    return {"train": splits_lib.SourceSplit(num_examples=count, shard_lengths=[count])}


def folder_source_split(folder: str) -> dict[str, splits_lib.SourceSplit]:
    """The one source split ("train": all files) that folder split expressions refer to."""
    num_files = len(list_folder_files(folder))
    return {"train": splits_lib.SourceSplit(num_examples=num_files, shard_lengths=[num_files])}


def source_fingerprint(
    source: str,
    archive: Optional[str],
    folder: Optional[str],
    splits: dict[str, str],
    dataset_version: str,
) -> str:
    """A string that changes whenever the input data or its split would, so TFX's cache key does too."""
    content = {"splits": splits}
    if source == SOURCE_TFDS:
        content["dataset"] = f"{TFDS_DATASET}:{dataset_version}"
        content["archive"] = _file_identity(archive) if archive else f"download {ARCHIVE_URL}"
    else:
        content["folder"] = os.path.abspath(folder)
        content["listing_sha256"] = _folder_listing_digest(folder)
    return json.dumps(content, sort_keys=True)


def _file_identity(path: str) -> str:
    stat = os.stat(path)
    return f"{os.path.abspath(path)} size={stat.st_size} mtime_ns={stat.st_mtime_ns}"


def _folder_listing_digest(folder: str) -> str:
    digest = hashlib.sha256()
    for relative_path, label in list_folder_files(folder):
        stat = os.stat(os.path.join(folder, relative_path))
        digest.update(f"{relative_path}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8"))
    return digest.hexdigest()


def _files_in(directory: str) -> list[str]:
    return sorted(entry.name for entry in os.scandir(directory) if entry.is_file())


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as opened:
        for block in iter(lambda: opened.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
