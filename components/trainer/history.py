"""The history of both training phases: one record, a JSON file and a plot."""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import tensorflow as tf  # noqa: E402

HISTORY_JSON = "training_history.json"
HISTORY_PNG = "training_history.png"
METRICS = ("loss", "binary_accuracy")
# The record's line saying where the Trainer trained (components/trainer/devices.py).
DEVICE_KEY = "device"


def merge_phases(phase1: dict[str, list[float]], phase2: dict[str, list[float]], phase1_start: int = 1) -> dict:
    """Per-epoch values of both phases, with 1-based epoch numbers and the phase of each."""
    merged: dict[str, list] = {"epoch": [], "phase": []}
    for phase, history in ((1, phase1), (2, phase2)):
        epochs = len(next(iter(history.values()), []))
        start = phase1_start + len(merged["epoch"])
        merged["epoch"] += list(range(start, start + epochs))
        merged["phase"] += [phase] * epochs
    for key in sorted(set(phase1) | set(phase2)):
        merged[key] = [float(v) for v in phase1.get(key, [])] + [float(v) for v in phase2.get(key, [])]
    return merged


def save(history: dict, output_dir: str) -> tuple[str, str]:
    """Writes the JSON and the PNG plot to output_dir (any tf.io.gfile location)."""
    tf.io.gfile.makedirs(output_dir)
    json_path = os.path.join(output_dir, HISTORY_JSON)
    png_path = os.path.join(output_dir, HISTORY_PNG)
    with tf.io.gfile.GFile(json_path, "w") as f:
        json.dump(history, f, indent=1)
    with tf.io.gfile.GFile(png_path, "wb") as f:
        plot(history).savefig(f, format="png", dpi=100)
    return json_path, png_path


def plot(history: dict) -> plt.Figure:
    """Loss and accuracy per epoch for both splits, the start of fine-tuning marked."""
    figure, axes = plt.subplots(1, len(METRICS), figsize=(11, 4))
    epochs = history["epoch"]
    fine_tuning_starts = [e for e, p in zip(epochs, history["phase"]) if p == 2][:1]
    for axis, metric in zip(axes, METRICS):
        for key, label in ((metric, "train"), (f"val_{metric}", "eval")):
            if history.get(key):
                axis.plot(epochs[: len(history[key])], history[key], marker="o", label=label)
        for epoch in fine_tuning_starts:
            axis.axvline(epoch - 0.5, color="grey", linestyle="--", label="fine-tuning starts")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    plt.close(figure)
    return figure
