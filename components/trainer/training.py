"""The Trainer's run_fn: the recipe's frozen-base phase, then fine-tuning, then export.

`fn_args.train_steps` / `eval_steps`, when set, are the steps of every epoch (both
phases); None runs each epoch over the whole split.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import absl.logging
import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components import features
from components.config import TrainerConfig
from components.trainer import export, history, tfrecords
from components.trainer import model as model_lib
from components.transform import preprocessing

SHUFFLE_BUFFER = 1024  # records of size*size*3 bytes: 69 MB at 150x150


def run_fn(fn_args) -> None:
    config = _effective_config(TrainerConfig.from_custom_config(fn_args.custom_config))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path or fn_args.transform_output)
    keras.utils.set_random_seed(config.seed)
    train = transformed_dataset(fn_args.train_files, config, training=True, repeat=fn_args.train_steps is not None)
    evaluation = transformed_dataset(fn_args.eval_files, config, training=False, repeat=fn_args.eval_steps is not None)
    strategy = model_lib.distribution_strategy()
    with strategy.scope():
        model, base = model_lib.build_model(config)
        if not model_lib.has_pretrained_weights(config):
            calibrate_random_base(base, config, train)
        phases = train_two_phases(
            model,
            base,
            config,
            train,
            evaluation,
            train_steps=fn_args.train_steps,
            eval_steps=fn_args.eval_steps,
            callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)],
        )
    export.export_serving_model(model, tf_transform_output, config.image_size, fn_args.serving_model_dir)
    history.save(phases, fn_args.serving_model_dir)


def calibrate_random_base(base: keras.Model, config: TrainerConfig, train: tf.data.Dataset) -> None:
    """A base without pretrained weights gets its BatchNorm statistics from the first batch."""
    images, _ = next(iter(train))
    absl.logging.info("Base %s has no pretrained weights: calibrating its BatchNorm statistics on %d images.",
                      config.base, images.shape[0])
    model_lib.calibrate_batch_norm(base, model_lib.scale_for_base(config.base, images))


def train_two_phases(
    model: keras.Model,
    base: keras.Model,
    config: TrainerConfig,
    train: tf.data.Dataset,
    evaluation: Optional[tf.data.Dataset],
    train_steps: Optional[int] = None,
    eval_steps: Optional[int] = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict:
    """Phase 1 trains the head over a frozen base; phase 2 fine-tunes at a low rate,
    continuing the epoch count. Returns the merged per-epoch history."""
    fit_args = dict(
        x=train,
        validation_data=evaluation,
        steps_per_epoch=train_steps,
        validation_steps=eval_steps,
        callbacks=list(callbacks),
        verbose=2,
        shuffle=False,  # the training dataset shuffles itself (transformed_dataset)
    )
    model_lib.set_phase(base, 1)
    model_lib.compile_for_phase(model, config.phase1_learning_rate)
    phase1 = model.fit(epochs=config.phase1_epochs, **fit_args).history
    model_lib.set_phase(base, 2, config.fine_tune_top_layers)
    model_lib.compile_for_phase(model, config.phase2_learning_rate)
    total_epochs = config.phase1_epochs + config.phase2_epochs
    phase2 = model.fit(initial_epoch=config.phase1_epochs, epochs=total_epochs, **fit_args).history
    return history.merge_phases(phase1, phase2)


def transformed_dataset(
    file_patterns: Sequence[str] | str, config: TrainerConfig, training: bool, repeat: bool = False
) -> tf.data.Dataset:
    """Batches of (float32 [batch, size, size, 3] in [0, 255], float32 [batch, 1] labels)
    from the Transform's transformed examples (gzipped or plain TFRecords)."""
    files = _expand(file_patterns)
    dataset = tfrecords.dataset(files, num_parallel_reads=tf.data.AUTOTUNE)
    if not repeat:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(_count_records(files)))
    if training:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=config.seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(config.batch_size)
    dataset = dataset.map(lambda records: parse_transformed(records, config.image_size), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def parse_transformed(records: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    spec = {
        features.TRANSFORMED_IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        features.TRANSFORMED_LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    parsed = tf.io.parse_example(records, spec)
    images = preprocessing.decode_transformed_images(parsed[features.TRANSFORMED_IMAGE_KEY], image_size)
    labels = tf.cast(tf.reshape(parsed[features.TRANSFORMED_LABEL_KEY], [-1, 1]), tf.float32)
    return images, labels


def _expand(file_patterns: Sequence[str] | str) -> list[str]:
    patterns = [file_patterns] if isinstance(file_patterns, str) else list(file_patterns)
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"No transformed examples match {patterns}; check the Transform output.")
    return files


def _count_records(files: Sequence[str]) -> int:
    """The number of examples in `files`, so that the dataset's cardinality is known.

    Keras then knows each epoch's length in advance; on a dataset of unknown length it finds
    the end of the first epoch by running out of data, and warns that it did.
    """
    count = int(tfrecords.dataset(files).reduce(np.int64(0), lambda total, _: total + 1))
    if count == 0:
        raise ValueError(f"The transformed examples {list(files)} hold no records; check the Transform's input split.")
    return count


def _effective_config(config: TrainerConfig) -> TrainerConfig:
    """Mixed precision only helps on GPUs; on CPUs it is slow, so it is turned off there."""
    if config.mixed_precision and not tf.config.list_physical_devices("GPU"):
        absl.logging.warning("mixed_precision is set but no GPU is visible: training in float32.")
        return dataclasses.replace(config, mixed_precision=False)
    return config
