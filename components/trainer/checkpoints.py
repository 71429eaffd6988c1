"""Per-epoch checkpoints of both training phases, so that an interrupted Trainer resumes.

A Trainer execution that dies (a crash, SIGKILL, Ctrl-C, a preempted Kubeflow pod) loses only
the epoch it was in. After every epoch the model's weights, the optimizer's state and the
per-epoch history so far are written (TensorFlow's CheckpointManager, then a small state file
renamed into place) to a folder keyed by what determines the training: the Trainer's input
artifacts and its settings (`checkpoint_key`). A rerun on the same inputs, or a Kubeflow retry
of the same task, finds that folder and continues with the next epoch of the phase it was in.
The folder is removed once the model is exported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Optional

import keras
import tensorflow as tf

STATE_FILE = "state.json"
# Where the Trainer's executor tells run_fn to checkpoint (a custom_config key; not a setting).
CHECKPOINT_DIR_KEY = "checkpoint_dir"
CHECKPOINTS_KEPT = 2  # the state file names the newer; the older covers a crash between the two writes


def checkpoint_key(inputs: dict[str, list[str]], settings: dict[str, Any]) -> str:
    """A short digest of the input artifacts' URIs and the training settings."""
    document = json.dumps({"inputs": inputs, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(document.encode()).hexdigest()[:20]


@dataclasses.dataclass
class Progress:
    """The epochs finished so far, in both phases, with their Keras logs."""

    phase: int = 1  # the phase of the last finished epoch (the optimizer the checkpoint holds)
    epochs_done: int = 0
    phases: list[int] = dataclasses.field(default_factory=list)  # per finished epoch
    logs: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # per key, per finished epoch
    resumed_at_epoch: list[int] = dataclasses.field(default_factory=list)  # 1-based epochs runs resumed at
    checkpoint: Optional[str] = None

    def add_epoch(self, phase: int, logs: dict[str, Any]) -> None:
        for key, value in logs.items():
            self.logs.setdefault(key, []).append(float(value))
        self.phases.append(phase)
        self.phase = phase
        self.epochs_done += 1

    def phase_logs(self, phase: int) -> dict[str, list[float]]:
        """This phase's per-epoch values, keyed as in Keras's History."""
        picked = [i for i, p in enumerate(self.phases) if p == phase]
        return {key: [values[i] for i in picked] for key, values in self.logs.items()}


class TrainingCheckpoints:
    """A checkpoint folder: load what an earlier attempt finished, save after each epoch, remove."""

    def __init__(self, directory: str):
        self.directory = directory
        self._state_path = os.path.join(directory, STATE_FILE)

    def load(self) -> Optional[Progress]:
        if not tf.io.gfile.exists(self._state_path):
            return None
        with tf.io.gfile.GFile(self._state_path) as f:
            return Progress(**json.load(f))

    def save(self, model: keras.Model, progress: Progress, optimizer: Optional[keras.optimizers.Optimizer] = None
             ) -> None:
        """The model and the optimizer (the model's own unless given), then the state naming
        them (renamed into place, so a reader sees the old state or the new one, never half of one)."""
        checkpoint = _checkpoint(model, optimizer or model.optimizer)
        manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=CHECKPOINTS_KEPT)
        progress.checkpoint = manager.save(checkpoint_number=progress.epochs_done)
        partial = self._state_path + ".partial"
        with tf.io.gfile.GFile(partial, "w") as f:
            json.dump(dataclasses.asdict(progress), f)
        tf.io.gfile.rename(partial, self._state_path, overwrite=True)

    def restore(self, model: keras.Model, progress: Progress, trained: Optional[keras.Model] = None) -> None:
        """Weights and optimizer state of the last finished epoch, into the model compiled for
        that epoch's phase, or into `model` and the optimizer of `trained`, the model being fit
        when it is another one (the head on cached features, whose layers are the model's).
        The optimizer is built first, so its slots exist to restore into."""
        trained = trained or model
        trained.optimizer.build(trained.trainable_variables)
        status = _checkpoint(model, trained.optimizer).read(progress.checkpoint)
        # Every variable of the model and optimizer found a value; the manager's own save
        # counter is not restored (expect_partial says so, instead of a warning at exit).
        status.assert_existing_objects_matched().expect_partial()

    def remove(self) -> None:
        if tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)


def _checkpoint(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> tf.train.Checkpoint:
    """The model, its optimizer and the states of its random generators (augmentation and
    dropout draws), which the model's own tracking leaves out: a resumed epoch draws what the
    uninterrupted one would have."""
    random_states = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    return tf.train.Checkpoint(model=model, optimizer=optimizer, random_states=random_states)


class SaveEveryEpoch(keras.callbacks.Callback):
    """Records each finished epoch of `phase` in `progress`, and saves a checkpoint of it: of
    `saved_model` when the model being fit is another one (the head on cached features)."""

    def __init__(self, progress: Progress, phase: int, checkpoints: Optional[TrainingCheckpoints],
                 saved_model: Optional[keras.Model] = None):
        super().__init__()
        self._progress = progress
        self._phase = phase
        self._checkpoints = checkpoints
        self._saved_model = saved_model

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self._progress.add_epoch(self._phase, logs or {})
        if self._checkpoints is not None:
            self._checkpoints.save(self._saved_model or self.model, self._progress, optimizer=self.model.optimizer)
