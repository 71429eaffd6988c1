"""Per-epoch checkpoints: a training interrupted in either phase resumes where it stopped."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from support import sample_images
from components.config import TrainerConfig
from components.trainer import checkpoints, executor, training
from components.trainer import model as model_lib
from components.transform import standalone

SIZE = 32
# A base of two convolutions with BatchNormalization, registered for this module only
# (tiny_base): what is checked here, that weights, optimizer state and random draws carry over
# an interruption, does not depend on the base's architecture, and tracing MobileNetV3's
# fine-tuning step again in every fresh model took most of this module's minutes.
TINY_BASE = "tiny_base"
CONFIG = TrainerConfig(base=TINY_BASE, weights="none", image_size=SIZE, batch_size=2,
                       phase1_epochs=2, phase2_epochs=2, phase2_learning_rate=1e-4)
DIRECT = dataclasses.replace(CONFIG, phase1_feature_cache=False)  # phase 1 through the base every epoch


def build_tiny_base(include_top=False, weights=None, input_shape=None) -> keras.Model:
    """Called as components/trainer/model.py's _build_base calls keras.applications' constructors."""
    assert not include_top and weights is None
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for index, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
    return keras.Model(inputs, x, name=TINY_BASE)


@pytest.fixture(scope="module", autouse=True)
def tiny_base():
    spec = model_lib.BaseSpec(build_tiny_base, None, min_image_size=8, layer_count=7, gflops_224=0.01)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(model_lib.BASES, TINY_BASE, spec)
        yield


class Crash(Exception):
    pass


class CrashAtEpoch(keras.callbacks.Callback):
    """Dies as epoch `epoch` (0-based) begins, as a killed process would: nothing more is saved."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Crash(f"crash at epoch {epoch}")


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("examples")
    images = [sample_images.jpeg(seed=i, size=(40 + 10 * i, 50)) for i in range(6)]
    _, pattern = standalone.transform_images(images, [0, 1] * 3, str(tmp / "transform"), SIZE)
    return pattern


def train(pattern, directory, crash_at=None, config=CONFIG):
    """One attempt in a fresh model, as a new Trainer process would make it."""
    keras.utils.set_random_seed(config.seed)
    # In file order, so that an uninterrupted and a resumed training see the same batches.
    data = training.transformed_dataset([pattern], config, training=False)
    model, base = model_lib.build_model(config)
    model_lib.calibrate_batch_norm(base, next(iter(data))[0])
    callbacks = [CrashAtEpoch(crash_at)] if crash_at is not None else []
    history = training.train_two_phases(model, base, config, data, data, callbacks=callbacks,
                                        checkpoints=checkpoints.TrainingCheckpoints(str(directory)))
    return model, history


@pytest.fixture(scope="module")
def uninterrupted(examples, tmp_path_factory):
    directory = tmp_path_factory.mktemp("uninterrupted")
    return (*train(examples, directory), directory)


@pytest.fixture(scope="module")
def uninterrupted_direct(examples, tmp_path_factory):
    return (*train(examples, tmp_path_factory.mktemp("direct"), config=DIRECT), None)


@pytest.mark.parametrize("crash_at, phase, config", [(1, 1, CONFIG), (3, 2, CONFIG), (1, 1, DIRECT)],
                         ids=["phase1-cached-features", "phase2", "phase1-direct"])
def test_a_training_killed_in_either_phase_resumes_and_ends_as_if_uninterrupted(
        examples, request, tmp_path, crash_at, phase, config):
    with pytest.raises(Crash):
        train(examples, tmp_path, crash_at=crash_at, config=config)
    _check_what_the_killed_attempt_left(tmp_path, crash_at, phase)

    resumed_model, resumed = train(examples, tmp_path, config=config)

    reference = "uninterrupted" if config.phase1_feature_cache else "uninterrupted_direct"
    expected_model, expected, _ = request.getfixturevalue(reference)
    assert resumed["epoch"] == expected["epoch"] == [1, 2, 3, 4]
    assert resumed["phase"] == expected["phase"] == [1, 1, 2, 2]
    assert resumed["resumed_at_epoch"] == [crash_at + 1] and expected["resumed_at_epoch"] == []
    for key in ("loss", "binary_accuracy", "val_loss", "val_binary_accuracy"):
        np.testing.assert_allclose(resumed[key], expected[key], rtol=1e-4, atol=1e-5, err_msg=key)
    # Same weights, optimizer state and random draws: the resumed epochs started where the killed run stopped.
    for ours, theirs in zip(resumed_model.variables, expected_model.variables):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5, err_msg=ours.path)
    assert int(resumed_model.optimizer.iterations.numpy()) == int(expected_model.optimizer.iterations.numpy())


def _check_what_the_killed_attempt_left(directory, epochs_done, phase):
    """A state naming the last epoch's checkpoint, the one before kept, an optimizer with state."""
    with open(directory / checkpoints.STATE_FILE) as f:
        state = json.load(f)
    assert (state["epochs_done"], state["phase"]) == (epochs_done, phase)
    assert state["phases"] == [1, 1, 2, 2][:epochs_done] and len(state["logs"]["loss"]) == epochs_done
    assert state["checkpoint"].endswith(f"ckpt-{epochs_done}") and os.path.exists(state["checkpoint"] + ".index")
    kept = sorted(name for name in os.listdir(directory) if name.endswith(".index"))
    assert kept == [f"ckpt-{n}.index" for n in range(max(1, epochs_done - 1), epochs_done + 1)]

    progress = checkpoints.TrainingCheckpoints(str(directory)).load()
    model, base = model_lib.build_model(CONFIG)
    model_lib.set_phase(base, phase)
    model_lib.compile_for_phase(model, CONFIG.phase1_learning_rate)
    checkpoints.TrainingCheckpoints(str(directory)).restore(model, progress)
    batches = 3  # 6 examples in batches of 2
    assert int(model.optimizer.iterations.numpy()) == batches * (epochs_done if phase == 1 else epochs_done - 2)
    moments = [v for v in model.optimizer.variables if "momentum" in v.path]
    assert moments and any(float(tf.reduce_max(tf.abs(v))) > 0 for v in moments)


def test_finished_training_after_a_crash_does_not_train_again(examples, uninterrupted):
    """A crash after the last epoch (during export) reruns no epoch."""
    _, first, directory = uninterrupted
    model, again = train(examples, directory)
    assert again["epoch"] == [1, 2, 3, 4] and again["resumed_at_epoch"] == [5]
    assert again["loss"] == first["loss"]
    assert int(model.optimizer.iterations.numpy()) == 2 * 3  # phase 2's own optimizer: 2 epochs x 3 batches


def _artifact(uri):
    artifact = standard_artifacts.Examples()
    artifact.uri = uri
    return artifact


def _checkpoint_dir(examples_uri, phase1_epochs, root="/root/ckpt"):
    properties = executor.with_tunables_in_custom_config({
        "custom_config": json.dumps(CONFIG.to_custom_config()), "phase1_epochs": phase1_epochs,
        "train_args": '{"splits": ["train"]}', "eval_args": '{"splits": ["eval"]}', "run_fn": training.__name__,
        "checkpoint_root": root,
    })
    properties = executor.with_checkpoint_dir({"examples": [_artifact(examples_uri)]}, properties)
    return json.loads(properties["custom_config"]).get(checkpoints.CHECKPOINT_DIR_KEY)


def test_checkpoint_folder_is_keyed_by_inputs_and_settings():
    first = _checkpoint_dir("/root/Transform/transformed_examples/5", 20)
    assert first.startswith("/root/ckpt/")
    assert _checkpoint_dir("/root/Transform/transformed_examples/5", 20) == first  # a rerun or a retry
    assert _checkpoint_dir("/root/Transform/transformed_examples/9", 20) != first  # other data
    assert _checkpoint_dir("/root/Transform/transformed_examples/5", 21) != first  # other settings
    assert _checkpoint_dir("/root/Transform/transformed_examples/5", 20, root="") is None  # no root: none
