"""TFRecord files as TFX writes them: gzipped when named "*.gz", plain otherwise."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def compression_type(files: Sequence[str]) -> str:
    """"GZIP" when every file ends in ".gz", "" when none does (TFX's readers decide the same way)."""
    gzipped = {f.endswith(".gz") for f in files}
    if len(gzipped) > 1:
        raise ValueError(f"Mixed gzipped and plain TFRecord files: {sorted(files)}. Read them separately.")
    return "GZIP" if gzipped == {True} else ""


def dataset(files: Sequence[str], **kwargs) -> tf.data.TFRecordDataset:
    files = list(files)
    return tf.data.TFRecordDataset(files, compression_type=compression_type(files), **kwargs)
