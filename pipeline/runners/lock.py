"""One run per pipeline root at a time: an operating-system lock on a file in the root.

Two runs on one root would write one ML Metadata SQLite file from two processes and push
two versions. `flock` is released by the kernel when the holding process exits, however it
exits (SIGKILL included), so a dead run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from typing import Iterator

from pipeline.config.settings import ConfigError

LOCK_FILE = ".run.lock"


class RootInUse(ConfigError):
    """Another live process holds the pipeline root's lock."""


@contextlib.contextmanager
def hold(root: str, command: str | None = None) -> Iterator[None]:
    """Holds `root`'s lock for the block; raises RootInUse at once when another run holds it."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(fd)
        os.close(fd)
        raise RootInUse(
            f"pipeline root '{root}' is in use by {holder}; wait for that run to finish, "
            "or pass another --pipeline-root"
        ) from None
    try:
        _record_holder(fd, command)
        yield
    finally:
        os.close(fd)  # releases the lock


def _record_holder(fd: int, command: str | None) -> None:
    holder = {
        "pid": os.getpid(),
        "command": command or " ".join(["python -m pipeline", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)


def _describe_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"process {holder['pid']} (`{holder['command']}`, started {holder['started']})"
    except (ValueError, KeyError, OSError):
        return "another process"  # it has the lock but has not written its details yet
