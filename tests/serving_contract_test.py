"""The signature contract TF Serving and its clients rely on, read from a pushed model (the
session's `pushed_model`, tests/conftest.py)."""

import os

import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from support import sample_images
from support.serving_model import MODEL_NAME, load_saved_model
from components import features
from components.serving import warmup
from components.trainer import export

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
