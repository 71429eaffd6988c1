"""What the Trainer costs on this machine: its two per-image rates, measured on a few batches
at the configured base, image size and batch size, and the Trainer's time they imply.

The rates are those tools/bench/phase1_bench.py scales to the full profile: the frozen base's
forward pass (phase 1's features, and every validation pass) and a fine-tuning step (phase 2).
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from components.config import TrainerConfig
from components.trainer import feature_cache
from components.trainer import model as model_lib


@dataclasses.dataclass(frozen=True)
class Rates:
    base_images_per_s: float  # the frozen base's forward pass, augmentation included
    train_images_per_s: float  # a fine-tuning step: forward and backward through the whole model


@dataclasses.dataclass(frozen=True)
class TrainerTime:
    phase1_s: float
    phase2_s: float

    @property
    def total_s(self) -> float:
        return self.phase1_s + self.phase2_s


def measure(config: TrainerConfig, batches: int = 2) -> Rates:
    """Times `batches` batches of each pass after one untimed batch (tracing), on random pixels
    and a base without pretrained weights (the cost is the same as with them)."""
    config = dataclasses.replace(config, weights="none", mixed_precision="false")
    model, base = model_lib.build_model(config)
    images = tf.constant(np.random.default_rng(0).uniform(0, 255, (config.batch_size, config.image_size,
                                                                    config.image_size, 3)), tf.float32)
    labels = tf.constant(np.random.default_rng(1).integers(0, 2, (config.batch_size, 1)), tf.float32)
    extractor = feature_cache.feature_extractor(model)
    forward = tf.function(lambda batch: extractor(batch, training=True))
    base_rate = _images_per_second(lambda: forward(images).numpy(), config.batch_size, batches)
    model_lib.set_phase(base, 2, config.fine_tune_top_layers)
    model_lib.compile_for_phase(model, config.phase2_learning_rate)
    train_rate = _images_per_second(lambda: model.train_on_batch(images, labels), config.batch_size, batches)
    keras.backend.clear_session()
    return Rates(base_rate, train_rate)


def _images_per_second(step, batch_size: int, batches: int) -> float:
    step()
    started = time.perf_counter()
    for _ in range(batches):
        step()
    return batches * batch_size / (time.perf_counter() - started)


def trainer_time(config: TrainerConfig, train_images: int, eval_images: int, rates: Rates) -> TrainerTime:
    """Phase 1: the base over each augmented view of the training images and once over the
    validation images (cached features), or over both every epoch (direct); the head's own
    epochs on features are left out (seconds). Phase 2: every epoch, a training step per
    training image and the base over the validation images."""
    if config.phase1_epochs == 0:
        phase1_passes = 0.0
    elif config.phase1_feature_cache:
        phase1_passes = config.phase1_augmented_views * train_images + eval_images
    else:
        phase1_passes = config.phase1_epochs * (train_images + eval_images)
    phase2 = config.phase2_epochs * (train_images / rates.train_images_per_s + eval_images / rates.base_images_per_s)
    return TrainerTime(phase1_passes / rates.base_images_per_s, phase2)
