"""The signature contract TF Serving and its clients rely on, read from a pushed model.

Also home of `pushed_model`, the one small exported and pushed model the serving tests share
(warmup_test and serving_client_test import the fixture and `load_saved_model`).
"""

import functools
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

import sample_images
from components import features
from components.config import TrainerConfig
from components.pusher.executor import push_atomically
from components.trainer import export, warmup
from components.trainer import model as model_lib
from components.transform import standalone
from pipeline.config import settings as config_lib

SIZE = 32
CONFIG = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=SIZE)
MODEL_NAME = config_lib.PipelineConfig.model_name


@functools.cache
def _export_and_push(root: str) -> str:
    """Exports an untrained tiny model with a real transform graph and pushes it under `root`.

    Returns the pushed version's folder. Cached so that one test session builds it once.
    """
    graph_dir, _ = standalone.transform_images(sample_images.mixed_images(), [0, 1, 0, 1, 0], root, SIZE)
    model, base = model_lib.build_model(CONFIG)
    give_distinct_outputs(model, base)
    export_dir = os.path.join(root, "export")
    export.export_serving_model(model, tft.TFTransformOutput(graph_dir), SIZE, export_dir)
    _, version_dir = push_atomically(export_dir, os.path.join(root, "serving_model", MODEL_NAME))
    return version_dir


def give_distinct_outputs(model, base) -> None:
    """BatchNorm statistics and head weights that make an untrained model's outputs differ per
    image, so that comparing two loaders' outputs compares something."""
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (8, SIZE, SIZE, 3)), tf.float32)
    model_lib.calibrate_batch_norm(base, model_lib.scale_for_base(CONFIG.base, images))
    head = model.get_layer("logit")
    kernel = rng.normal(0, 1, head.kernel.shape).astype("float32")
    head.kernel.assign(kernel)
    logits = model(images, training=False).numpy().ravel()
    scale = 2.0 / max(float(logits.std()), 1e-12)  # logits spread over about [-2, 2]
    head.kernel.assign(kernel * scale)
    head.bias.assign([-float(logits.mean()) * scale])


@functools.cache
def load_saved_model(path: str):
    """tf.saved_model.load, once per path: the serving tests share the loaded model."""
    return tf.saved_model.load(path)


@pytest.fixture(scope="session")
def pushed_model(tmp_path_factory) -> str:
    """`<root>/serving_model/cats_vs_dogs/<version>`, a pushed serving model."""
    return _export_and_push(str(tmp_path_factory.getbasetemp() / "pushed_model"))


def _serving_signature(version_dir):
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    (meta_graph,) = saved_model.meta_graphs
    return meta_graph, meta_graph.signature_def["serving_default"]


def _dims(tensor_info):
    return [dim.size for dim in tensor_info.tensor_shape.dim]


def test_pushed_version_is_in_tf_servings_layout(pushed_model):
    base, version = os.path.split(pushed_model)

    assert os.path.basename(base) == MODEL_NAME and version.isdigit()
    assert os.listdir(base) == [version]
    for required in ("saved_model.pb", "variables/variables.index", f"{warmup.WARMUP_DIR}/{warmup.WARMUP_FILE}"):
        assert os.path.isfile(os.path.join(pushed_model, required)), required


def test_serving_default_takes_a_batch_of_image_bytes(pushed_model):
    meta_graph, signature = _serving_signature(pushed_model)

    assert list(meta_graph.meta_info_def.tags) == ["serve"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert list(signature.inputs) == [features.SERVING_INPUT_KEY]
    image_bytes = signature.inputs[features.SERVING_INPUT_KEY]
    assert image_bytes.dtype == types_pb2.DT_STRING
    assert _dims(image_bytes) == [-1]


def test_serving_default_outputs_probability_label_and_logit_per_image(pushed_model):
    _, signature = _serving_signature(pushed_model)

    expected = {
        features.PROBABILITY_KEY: types_pb2.DT_FLOAT,
        features.PREDICTED_LABEL_KEY: types_pb2.DT_STRING,
        features.LOGIT_KEY: types_pb2.DT_FLOAT,
    }
    assert {name: info.dtype for name, info in signature.outputs.items()} == expected
    assert all(_dims(info) == [-1] for info in signature.outputs.values())


def test_pushed_model_answers_with_the_contracts_names_and_values(pushed_model):
    signature = load_saved_model(pushed_model).signatures["serving_default"]

    outputs = signature(**{features.SERVING_INPUT_KEY: tf.constant(sample_images.mixed_images())})

    probabilities = outputs[features.PROBABILITY_KEY].numpy()
    assert probabilities.shape == (5,) and ((probabilities >= 0) & (probabilities <= 1)).all()
    expected_labels = [features.LABEL_NAMES[int(p > 0.5)].encode() for p in probabilities]
    assert outputs[features.PREDICTED_LABEL_KEY].numpy().tolist() == expected_labels
    tf.debugging.assert_near(tf.sigmoid(outputs[features.LOGIT_KEY]), probabilities, atol=1e-6)


def test_examples_signature_for_tfma_is_kept(pushed_model):
    meta_graph, _ = _serving_signature(pushed_model)

    examples = meta_graph.signature_def[features.EXAMPLES_SIGNATURE]
    assert examples.inputs[export.EXAMPLES_INPUT_KEY].dtype == types_pb2.DT_STRING
    assert features.PROBABILITY_KEY in examples.outputs
