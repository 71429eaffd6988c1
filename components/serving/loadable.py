"""Whether a version folder holds a SavedModel TF Serving (and TFMA) can load, read in
milliseconds from its graph proto and its variables' index, not its weights."""

from __future__ import annotations

import os
import re
from typing import Optional

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2
from tfx.dsl.io import fileio

SAVED_MODEL_TAG = "serve"  # the tag TF Serving and TFMA load
_DATA_SHARD = re.compile(r"variables\.data-(\d+)-of-(\d+)")


def unloadable_reason(version_dir: str, signatures: tuple[str, ...] = ()) -> Optional[str]:
    """Why `version_dir` holds no SavedModel that TF Serving (and TFMA) can load, in a few
    words; None when it does: a saved_model.pb that parses, with a 'serve' meta graph that has
    `signatures`, and variables whose index reads and whose data files are all there.

    It reads the graph proto and the variables' index, not the weights: a few milliseconds.
    """
    try:
        if not fileio.isdir(version_dir):
            return "not a folder"
        entries = {name.rstrip("/") for name in fileio.listdir(version_dir)}
        if not entries:
            return "empty folder (no saved_model.pb)"
        if "saved_model.pb" not in entries:
            return "no saved_model.pb"
        with fileio.open(os.path.join(version_dir, "saved_model.pb"), "rb") as opened:
            data = opened.read()
        saved_model = saved_model_pb2.SavedModel()
        try:
            saved_model.ParseFromString(data)
        except DecodeError:
            return f"saved_model.pb is corrupt (it does not parse as a SavedModel, {len(data):,} bytes)"
        serving_graphs = [graph for graph in saved_model.meta_graphs if SAVED_MODEL_TAG in graph.meta_info_def.tags]
        if not serving_graphs:
            return f"saved_model.pb has no meta graph tagged '{SAVED_MODEL_TAG}'"
        missing = [name for name in signatures if name not in serving_graphs[0].signature_def]
        if missing:
            return f"the SavedModel has no signature {', '.join(repr(name) for name in missing)}, which the Evaluator calls"
        return _variables_problem(os.path.join(version_dir, "variables"))
    except (OSError, tf.errors.OpError) as error:
        return f"unreadable ({type(error).__name__}: {error})"


def _variables_problem(variables_dir: str) -> Optional[str]:
    if not fileio.isdir(variables_dir):
        return "no variables folder"
    entries = {name.rstrip("/") for name in fileio.listdir(variables_dir)}
    if "variables.index" not in entries:
        return "no variables/variables.index"
    try:
        tf.train.load_checkpoint(os.path.join(variables_dir, "variables"))
    except (tf.errors.OpError, ValueError) as error:
        return f"variables/variables.index is corrupt ({str(error).splitlines()[0]})"
    shards = [_DATA_SHARD.fullmatch(name) for name in entries]
    counts = {int(match.group(2)) for match in shards if match}
    if not counts:
        return "no variables/variables.data-* file"
    count = max(counts)
    present = {int(match.group(1)) for match in shards if match and int(match.group(2)) == count}
    absent = [f"variables.data-{index:05d}-of-{count:05d}" for index in range(count) if index not in present]
    if absent:
        return f"missing variables/{absent[0]}" + (f" and {len(absent) - 1} more" if len(absent) > 1 else "")
    return None
