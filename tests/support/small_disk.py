"""A small tmpfs, standing in for a full disk; tests that need it skip where it cannot be mounted."""

import contextlib
import pathlib
import subprocess
from typing import Iterator

import pytest


@contextlib.contextmanager
def mounted_tmpfs(mount_point: pathlib.Path, size: str) -> Iterator[pathlib.Path]:
    """Mounts a tmpfs of `size` (e.g. "256k") at `mount_point` for the block; needs root and a
    mount namespace of one's own (tools/in-env gives the tests one)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
