"""Writing a page where readers (a browser, KFP's UI, TF Serving's neighbours) may look."""

from __future__ import annotations

import os
import uuid

import tensorflow as tf


def write_atomically(path: str, text: str) -> None:
    """Readers see the old file or the new one whole, never a part: the text goes to a hidden
    sibling first, renamed over `path` (a local folder or a bucket: tf.io.gfile)."""
    folder = os.path.dirname(path)
    tf.io.gfile.makedirs(folder)
    temp_path = os.path.join(folder, f".{os.path.basename(path)}-{uuid.uuid4().hex}.tmp")
    try:
        with tf.io.gfile.GFile(temp_path, "w") as out:
            out.write(text)
        tf.io.gfile.rename(temp_path, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(temp_path):
            tf.io.gfile.remove(temp_path)
        raise
