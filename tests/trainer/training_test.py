"""run_fn end to end on a handful of transformed examples, with a tiny config."""

import json
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from support import sample_images
from components import features
from components.config import TrainerConfig
from components.trainer import checkpoints, devices, history, training
from components.trainer import model as model_lib
from components.transform import standalone

SIZE = 32
CONFIG = TrainerConfig(
    base="mobilenet_v3_small",
    weights="none",
    image_size=SIZE,
    batch_size=2,
    phase1_epochs=1,
    phase2_epochs=1,
    phase2_learning_rate=1e-4,
    # Phase 2 fine-tunes the base's last conv and BatchNorm only: the gradients through the
    # whole base cost its first step about 12 s of CPU (tracing) here, and nothing this module checks needs
    # them (the full base's phase-2 step: model_test.py; run_fn fine-tuning all of it: the demo run).
    fine_tune_top_layers=3,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The outputs of one run_fn call: (FnArgs, transformed examples pattern, its Python warnings)."""
    tmp = tmp_path_factory.mktemp("trainer")
    images = [sample_images.jpeg(seed=i, size=(40 + 10 * i, 50)) for i in range(6)]
    graph_dir, pattern = standalone.transform_images(images, [0, 1] * 3, str(tmp / "transform"), SIZE)
    fn_args = FnArgs(
        train_files=[pattern],
        eval_files=[pattern],
        train_steps=None,
        eval_steps=None,
        transform_graph_path=graph_dir,
        transform_output=graph_dir,
        serving_model_dir=str(tmp / "serving_model"),
        model_run_dir=str(tmp / "model_run"),
        custom_config={**CONFIG.to_custom_config(), checkpoints.CHECKPOINT_DIR_KEY: str(tmp / "checkpoints")},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        training.run_fn(fn_args)
    return fn_args, pattern, [str(warning.message) for warning in caught]


def test_run_fn_exports_a_serving_model(trained):
    fn_args, _, _ = trained

    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    outputs = loaded.signatures["serving_default"](**{features.SERVING_INPUT_KEY: tf.constant([sample_images.jpeg()])})

    probability = outputs[features.PROBABILITY_KEY].numpy()
    assert probability.shape == (1,) and 0 <= probability[0] <= 1
    assert features.EXAMPLES_SIGNATURE in loaded.signatures


def test_history_of_both_phases_is_saved_as_json_and_plot(trained):
    fn_args, _, _ = trained

    with open(f"{fn_args.serving_model_dir}/{history.HISTORY_JSON}") as f:
        saved = json.load(f)
    assert saved["epoch"] == [1, 2]
    assert saved["phase"] == [1, 2]
    assert saved["resumed_at_epoch"] == []
    for key in ("loss", "binary_accuracy", "val_loss", "val_binary_accuracy"):
        assert len(saved[key]) == 2 and all(np.isfinite(saved[key]))
    with open(f"{fn_args.serving_model_dir}/{history.HISTORY_PNG}", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_history_names_the_device_the_trainer_used(trained):
    fn_args, _, _ = trained

    with open(f"{fn_args.serving_model_dir}/{history.HISTORY_JSON}") as f:
        saved = json.load(f)
    assert saved[history.DEVICE_KEY] == devices.choose(CONFIG).describe()


def test_one_device_strategy_trains_on_the_datasets_without_keras_warnings(trained):
    """One GPU's path (OneDeviceStrategy, which prefetches batches into the device's memory),
    on the one device this machine has: Keras still knows each epoch's length."""
    _, pattern, _ = trained
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model, _ = model_lib.build_model(CONFIG)
        model_lib.compile_for_phase(model, 1e-3)
    dataset = training.transformed_dataset([pattern], CONFIG, training=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = model.fit(dataset, epochs=2, verbose=0)

    assert len(fitted.history["loss"]) == 2 and np.isfinite(fitted.history["loss"]).all()
    assert not [warning for warning in caught if "ran out of data" in str(warning.message)]


def test_finished_training_removes_its_checkpoints(trained):
    fn_args, _, _ = trained
    checkpoint_dir = fn_args.custom_config[checkpoints.CHECKPOINT_DIR_KEY]
    assert os.path.isdir(os.path.dirname(checkpoint_dir)) and not os.path.exists(checkpoint_dir)


def test_tensorboard_logs_go_to_the_model_run_dir(trained):
    fn_args, _, _ = trained

    event_files = tf.io.gfile.glob(f"{fn_args.model_run_dir}/*/events.out.tfevents.*")

    assert {path.split("/")[-2] for path in event_files} == {"train", "validation"}


@pytest.mark.parametrize("noise", [
    "Your input ran out of data",  # Keras, when it finds an epoch's end by running dry
    "Model failed to serialize as JSON",  # Keras's TensorBoard callback, on a layer without get_config
    "`shuffle=True` was passed, but will be ignored",  # fit() on a dataset that shuffles itself
])
def test_run_fn_prints_no_keras_warning_a_user_cannot_act_on(trained, noise):
    _, _, caught = trained

    assert not [message for message in caught if noise in message]


def test_finite_dataset_knows_its_number_of_batches(trained):
    _, pattern, _ = trained

    dataset = training.transformed_dataset([pattern], CONFIG, training=True)

    assert int(dataset.cardinality()) == 3  # 6 examples in batches of 2
    assert len(list(dataset)) == 3


def test_dataset_gives_batches_of_pixels_and_labels(trained):
    _, pattern, _ = trained

    images, labels = next(iter(training.transformed_dataset([pattern], CONFIG, training=True)))

    assert images.shape == (2, SIZE, SIZE, 3) and images.dtype == tf.float32
    assert labels.shape == (2, 1) and set(labels.numpy().ravel()) <= {0.0, 1.0}


def test_steps_per_epoch_repeat_the_data(trained):
    _, pattern, _ = trained

    batches = list(training.transformed_dataset([pattern], CONFIG, training=False, repeat=True).take(5))

    assert len(batches) == 5


def test_empty_transformed_examples_are_named(tmp_path):
    empty = standalone.write_tfrecord(str(tmp_path / "transformed_examples-00000-of-00001"), [])

    with pytest.raises(ValueError, match="hold no records"):
        training.transformed_dataset([empty], CONFIG, training=True)


def test_missing_transformed_examples_are_named(tmp_path):
    with pytest.raises(ValueError, match="No transformed examples"):
        training.transformed_dataset([str(tmp_path / "*.gz")], CONFIG, training=True)


def test_history_merge_numbers_epochs_across_phases():
    merged = history.merge_phases({"loss": [3.0, 2.0]}, {"loss": [1.0]})

    assert merged == {"epoch": [1, 2, 3], "phase": [1, 1, 2], "loss": [3.0, 2.0, 1.0]}


VOLTA, PASCAL = devices.Gpu("Tesla V100", (7, 0)), devices.Gpu("Tesla P100", (6, 0))


@pytest.mark.parametrize("setting, gpus, expected", [
    ("auto", (), False),
    ("auto", (VOLTA,), True),
    ("auto", (PASCAL,), False),
    ("auto", (VOLTA, PASCAL), False),
    ("auto", (devices.Gpu("unknown", None),), False),
    ("true", (PASCAL,), True),
    ("false", (VOLTA,), False),
])
def test_mixed_precision_where_the_gpus_have_tensor_cores(setting, gpus, expected):
    assert devices.use_mixed_precision(setting, gpus) is expected


def test_mixed_precision_without_a_gpu_trains_in_float32(caplog):
    device = devices.choose(TrainerConfig(mixed_precision="true"), gpus=())
    assert device.mixed_precision is False
    assert "no GPU is visible" in caplog.text
    assert device.describe().startswith("CPU (")


def test_the_device_line_names_the_gpus_and_the_precision():
    device = devices.choose(TrainerConfig(), gpus=(VOLTA, VOLTA))
    assert device.describe() == "GPU: 2 x Tesla V100 (compute capability 7.0), mixed precision (float16)"


def test_this_machines_trainer_device_is_what_tensorflow_sees():
    device = devices.choose(TrainerConfig())
    assert len(device.gpus) == len(tf.config.list_physical_devices("GPU"))
