"""The Trainer's run_fn: the recipe's frozen-base phase, then fine-tuning, then export.

`fn_args.train_steps` / `eval_steps`, when set, are the steps of every epoch (both
phases); None runs each epoch over the whole split.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Optional, Sequence

import absl.logging
import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components import features
from components.config import TrainerConfig
from components.trainer import checkpoints as checkpoints_lib
from components.serving import tfrecords
from components.trainer import devices, export, feature_cache, history
from components.trainer import model as model_lib
from components.transform import preprocessing

SHUFFLE_BUFFER = 1024  # records of size*size*3 bytes: 69 MB at 150x150


def run_fn(fn_args) -> None:
    config = TrainerConfig.from_custom_config(fn_args.custom_config)
    device = devices.choose(config)
    config = dataclasses.replace(config, mixed_precision=str(device.mixed_precision).lower())
    print(f"[trainer] training on {device.describe()}", flush=True)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path or fn_args.transform_output)
    keras.utils.set_random_seed(config.seed)
    train = transformed_dataset(fn_args.train_files, config, training=True, repeat=fn_args.train_steps is not None)
    evaluation = transformed_dataset(fn_args.eval_files, config, training=False, repeat=fn_args.eval_steps is not None)
    checkpoints = checkpoints_for(fn_args.custom_config)
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
            checkpoints=checkpoints,
            spill_dir=local_spill_dir(fn_args.model_run_dir),
        )
    export.export_serving_model(model, tf_transform_output, config.image_size, fn_args.serving_model_dir,
                                config.max_image_pixels)
    phases[history.DEVICE_KEY] = device.describe()
    history.save(phases, fn_args.serving_model_dir)
    if checkpoints:
        checkpoints.remove()


def local_spill_dir(model_run_dir: str) -> str:
    """Phase 1's features that do not fit in memory are memory-mapped, which needs a local
    file: under the run's output when it is local, in the temp folder otherwise (gs://)."""
    if "://" in model_run_dir:
        return os.path.join(tempfile.gettempdir(), "phase1-features")
    return os.path.join(model_run_dir, "phase1-features")


def checkpoints_for(custom_config: Optional[dict]) -> Optional[checkpoints_lib.TrainingCheckpoints]:
    """The execution's checkpoint folder, which the Trainer's executor names in custom_config."""
    directory = (custom_config or {}).get(checkpoints_lib.CHECKPOINT_DIR_KEY)
    return checkpoints_lib.TrainingCheckpoints(directory) if directory else None


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
    checkpoints: Optional[checkpoints_lib.TrainingCheckpoints] = None,
    spill_dir: Optional[str] = None,
) -> dict:
    """Phase 1 trains the head over a frozen base (on cached base features unless
    `config.phase1_feature_cache` is off; `spill_dir` takes features that do not fit in memory);
    phase 2 fine-tunes at a low rate, continuing the epoch count. Returns the merged per-epoch history.

    With `checkpoints`, every finished epoch is saved there, and epochs an earlier attempt
    finished are not run again: training continues from the last one, in its phase, with the
    weights and optimizer state it ended with.
    """
    progress = checkpoints.load() if checkpoints else None
    if progress:
        total = config.phase1_epochs + config.phase2_epochs
        print(f"[trainer] resuming after epoch {progress.epochs_done}/{total} (phase {progress.phase}) "
              f"from the checkpoint in {checkpoints.directory}", flush=True)
        progress.resumed_at_epoch.append(progress.epochs_done + 1)
    progress = progress or checkpoints_lib.Progress()
    fit_args = dict(
        x=train,
        validation_data=evaluation,
        steps_per_epoch=train_steps,
        validation_steps=eval_steps,
        verbose=2,
        shuffle=False,  # the training dataset shuffles itself (transformed_dataset)
    )
    for phase, learning_rate, end_epoch in phase_plan(config):
        model_lib.set_phase(base, phase, config.fine_tune_top_layers)
        if phase == 1 and config.phase1_feature_cache:
            cached_inputs = dict(train=train, evaluation=evaluation, train_steps=train_steps, eval_steps=eval_steps)
            train_head_on_cached_features(model, config, cached_inputs, callbacks, checkpoints, progress, spill_dir)
            continue
        model_lib.compile_for_phase(model, learning_rate)
        if progress.checkpoint and progress.phase == phase:
            checkpoints.restore(model, progress)
        if progress.epochs_done >= end_epoch:
            continue
        recorder = checkpoints_lib.SaveEveryEpoch(progress, phase, checkpoints)
        model.fit(initial_epoch=progress.epochs_done, epochs=end_epoch, callbacks=[*callbacks, recorder], **fit_args)
    merged = history.merge_phases(progress.phase_logs(1), progress.phase_logs(2))
    merged["resumed_at_epoch"] = list(progress.resumed_at_epoch)
    return merged


def train_head_on_cached_features(
    model: keras.Model,
    config: TrainerConfig,
    inputs: dict,
    callbacks: Sequence[keras.callbacks.Callback],
    checkpoints: Optional[checkpoints_lib.TrainingCheckpoints],
    progress: checkpoints_lib.Progress,
    spill_dir: Optional[str],
) -> None:
    """Phase 1 on the frozen base's features (see feature_cache): the model's own head layers,
    the recipe's optimizer, loss, metrics and batch size, `phase1_epochs` epochs."""
    head = feature_cache.head_model(model, feature_cache.pooled_size(model))
    model_lib.compile_for_phase(head, config.phase1_learning_rate)
    resume = progress.checkpoint is not None and progress.phase == 1
    if progress.epochs_done >= config.phase1_epochs:
        if resume:  # phase 1 finished before the interruption: its weights, no features needed
            checkpoints.restore(model, progress, trained=head)
        return
    # Features first, from the fresh model's random generators (the draws the first attempt
    # made); then the checkpoint's weights, optimizer and generator states.
    cached = feature_cache.compute(model, inputs["train"], inputs["evaluation"], config.phase1_augmented_views,
                                   inputs["train_steps"], inputs["eval_steps"], spill_dir)
    if resume:
        checkpoints.restore(model, progress, trained=head)
    data, steps = feature_cache.epoch_datasets(cached, config.batch_size, progress.epochs_done,
                                               config.phase1_epochs, config.seed)
    recorder = checkpoints_lib.SaveEveryEpoch(progress, 1, checkpoints, saved_model=model)
    head.fit(data, validation_data=feature_cache.eval_dataset(cached, config.batch_size), steps_per_epoch=steps,
             initial_epoch=progress.epochs_done, epochs=config.phase1_epochs, callbacks=[*callbacks, recorder],
             verbose=2, shuffle=False)  # each epoch's dataset is shuffled (epoch_datasets)
    feature_cache.remove_spilled(cached)


def phase_plan(config: TrainerConfig) -> list[tuple[int, float, int]]:
    """(phase, learning rate, end epoch) of each phase; epochs count on across phases."""
    return [
        (1, config.phase1_learning_rate, config.phase1_epochs),
        (2, config.phase2_learning_rate, config.phase1_epochs + config.phase2_epochs),
    ]


def transformed_dataset(
    file_patterns: Sequence[str] | str, config: TrainerConfig, training: bool, repeat: bool = False
) -> tf.data.Dataset:
    """Batches of (float32 [batch, size, size, 3] in [0, 255], float32 [batch, 1] labels)
    from the Transform's transformed examples (gzipped or plain TFRecords): files read in
    parallel, batches parsed and decoded in parallel, prefetched (on a GPU the strategy then
    prefetches them into its memory: model.distribution_strategy)."""
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
