"""The version folders of a serving folder, as TF Serving counts them.

TF Serving's file-system source (`FileSystemStoragePathSource`) treats every child of a
model's base path whose name `safe_strto64` parses as a version: optional ASCII whitespace,
an optional '-', decimal digits, optional whitespace, within int64. Its default version
policy (latest) serves the highest number. The Pusher's next version goes above all of them,
and the Evaluator's baseline is the highest one that holds a loadable SavedModel.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from tfx.dsl.io import fileio

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
