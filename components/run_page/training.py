"""The Trainer's outputs read back: its SavedModel's folder, its history, and the device it
trained on (components/trainer/devices.py wrote that line into the history)."""

from __future__ import annotations

import json
import os
from typing import Optional

import tensorflow as tf

from components.trainer import history as history_lib
from components.run_page.record import Artifact


def serving_model_dir(model_uri: str) -> str:
    """The Trainer's SavedModel: TFX's Format-Serving folder of the Model artifact."""
    serving = os.path.join(model_uri, "Format-Serving")
    return serving if tf.io.gfile.isdir(serving) else model_uri


def read_history(model: Optional[Artifact]) -> Optional[dict]:
    if model is None:
        return None
    path = os.path.join(serving_model_dir(model.uri), history_lib.HISTORY_JSON)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def trainer_device(model: Optional[Artifact]) -> Optional[str]:
    """"CPU (...)" or "GPU: N x NAME (...), mixed precision (float16)"; None for a model
    trained before the Trainer recorded it, or no model."""
    return (read_history(model) or {}).get(history_lib.DEVICE_KEY)
