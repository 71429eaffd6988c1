"""Where the Trainer trains: the GPUs TensorFlow sees, mixed precision where they have tensor
cores, and the line the summary and run page show."""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import absl.logging
import tensorflow as tf

from components.config import TrainerConfig

# Volta (7.0) and newer run float16 matrix products on tensor cores; older GPUs gain nothing.
MIXED_PRECISION_MIN_CAPABILITY = (7, 0)


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    capability: Optional[tuple[int, int]]


@dataclasses.dataclass(frozen=True)
class TrainingDevice:
    gpus: tuple[Gpu, ...]
    mixed_precision: bool

    def describe(self) -> str:
        """E.g. "GPU: 1 x NVIDIA L4 (compute capability 8.9), mixed precision (float16)"."""
        if not self.gpus:
            return f"CPU ({os.cpu_count()} cores; TensorFlow sees no GPU)"
        names = sorted({f"{gpu.name} (compute capability {capability_text(gpu.capability)})" for gpu in self.gpus})
        precision = "mixed precision (float16)" if self.mixed_precision else "float32"
        return f"GPU: {len(self.gpus)} x {', '.join(names)}, {precision}"


def visible_gpus() -> tuple[Gpu, ...]:
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(Gpu(details.get("device_name", device.name), details.get("compute_capability")))
    return tuple(gpus)


def choose(config: TrainerConfig, gpus: Optional[tuple[Gpu, ...]] = None) -> TrainingDevice:
    """The devices TensorFlow sees and whether mixed precision is on for them."""
    gpus = visible_gpus() if gpus is None else gpus
    return TrainingDevice(gpus, use_mixed_precision(config.mixed_precision, gpus))


def use_mixed_precision(setting, gpus: tuple[Gpu, ...]) -> bool:
    """"auto": every GPU has tensor cores; "true": any GPU (on a CPU float16 is slow, so not
    there); "false": never."""
    setting = str(setting).lower()
    if setting == "false" or not gpus:
        if setting == "true":
            absl.logging.warning("mixed_precision is set but no GPU is visible: training in float32.")
        return False
    if setting == "true":
        return True
    return all(gpu.capability is not None and tuple(gpu.capability) >= MIXED_PRECISION_MIN_CAPABILITY
               for gpu in gpus)


def capability_text(capability: Optional[tuple[int, int]]) -> str:
    return ".".join(map(str, capability)) if capability else "unknown"
