"""Lets TFDS 4.9.10 find its builders' code on Python 3.9+ without the `importlib_resources` backport.

TFDS's dataset_builder imports `importlib_resources` (only for `abc.Traversable`) although
its metadata requires it only on Python < 3.9; the standard library's `importlib.resources`
has the same `abc.Traversable`. Without either, preparing any dataset fails with
ModuleNotFoundError. This is a no-op when the backport is installed.
"""

import importlib.resources
import importlib.resources.abc
import importlib.util
import sys


def ensure_importlib_resources() -> None:
    if "importlib_resources" not in sys.modules and importlib.util.find_spec("importlib_resources") is None:
        sys.modules["importlib_resources"] = importlib.resources


ensure_importlib_resources()
