"""The version folders of a serving folder, as TF Serving counts them, and adding one whole.

TF Serving's file-system source (`FileSystemStoragePathSource`) treats every child of a
model's base path whose name `safe_strto64` parses as a version: optional ASCII whitespace,
an optional '-', decimal digits, optional whitespace, within int64. Its default version
policy (latest) serves the highest number. The Pusher's next version goes above all of them
(`next_version`) and appears whole (`push_atomically`: copied beside, then renamed), and the
Evaluator's baseline is the highest one that holds a loadable SavedModel (baseline.py).
"""

from __future__ import annotations

import os
import re
import time
from typing import Optional

from tfx.dsl.io import fileio
from tfx.utils import io_utils

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_VERSION_NAME = re.compile(r"[ \t\n\v\f\r]*(-?[0-9]+)[ \t\n\v\f\r]*")


def version_number(name: str) -> Optional[int]:
    """The version TF Serving reads from a child's name, or None when it is no version."""
    match = _VERSION_NAME.fullmatch(name)
    if not match:
        return None
    number = int(match.group(1))
    return number if INT64_MIN <= number <= INT64_MAX else None


def versions(base_directory: str) -> list[tuple[int, str]]:
    """(version, path) of each version in `base_directory`, highest first ([] when it does not exist)."""
    if not fileio.isdir(base_directory):
        return []
    found = []
    for name in fileio.listdir(base_directory):
        name = name.rstrip("/")  # object stores list folders with a trailing '/'
        number = version_number(name)
        if number is not None:
            found.append((number, os.path.join(base_directory, name)))
    return sorted(found, reverse=True)


def next_version(base_directory: str) -> int:
    """The Unix time in seconds, or one above the highest version already in `base_directory`
    (every child TF Serving counts as a version, loadable or not), so the new version is the one
    TF Serving's default (latest) policy serves, and two pushes in one second never collide."""
    existing = [number for number, _ in versions(base_directory)]
    version = max([int(time.time()), *(number + 1 for number in existing[:1])])
    if version > INT64_MAX:
        raise PushFailed(
            f"{existing[0]} in {base_directory} is the highest version TF Serving accepts, so no version above it "
            "can be pushed; move that folder away, then run again."
        )
    return version


def push_atomically(model_path: str, base_directory: str) -> tuple[str, str]:
    """Copies `model_path` to `<base_directory>/<version>` via a same-filesystem rename; the
    version is `next_version`'s."""
    fileio.makedirs(base_directory)
    version = next_version(base_directory)
    serving_path = os.path.join(base_directory, str(version))
    staging_path = os.path.join(base_directory, f".{version}.incomplete")
    if fileio.exists(staging_path):
        fileio.rmtree(staging_path)
    try:
        io_utils.copy_dir(model_path, staging_path)
        fileio.rename(staging_path, serving_path)
    except BaseException as error:  # a full disk, a read error, Ctrl-C: leave nothing behind
        if fileio.exists(staging_path):
            fileio.rmtree(staging_path)
        if isinstance(error, Exception):
            raise PushFailed(
                f"pushing the model to {base_directory} failed ({type(error).__name__}: {error}); "
                "no version was added there. Free space or fix the folder, then run again."
            ) from error
        raise
    return str(version), serving_path


class PushFailed(RuntimeError):
    """The copy into the serving folder failed; what it had copied was removed."""
