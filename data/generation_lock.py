"""One maker at a time for a generated input: two runs (or test workers) that need the same
sample archive or pre-trained base on first use take turns, and the second finds it made
instead of writing it again beside the first."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
from typing import Iterator


@contextlib.contextmanager
def held(output: pathlib.Path) -> Iterator[None]:
    """Holds an exclusive lock on the folder of `output` (made if missing), so that no lock file
    is left beside it; the kernel drops the lock if the holder dies."""
    output.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(output.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)
