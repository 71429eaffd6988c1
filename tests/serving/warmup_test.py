"""TF Serving warm-up requests: real PredictionLogs that the pushed model answers."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from support import sample_images
from components import features
from components.serving import warmup
from support.serving_model import load_saved_model


@pytest.fixture(scope="module")
def serving_default(pushed_model):
    return load_saved_model(pushed_model).signatures["serving_default"]


def test_pushed_model_carries_one_predict_request_per_warmup_batch_size(pushed_model):
    logs = warmup.read_warmup_requests(pushed_model)

    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log"] * len(warmup.WARMUP_BATCH_SIZES)
    requests = [log.predict_log.request for log in logs]
    assert [request.model_spec.signature_name for request in requests] == ["serving_default"] * len(requests)
    inputs = [request.inputs[features.SERVING_INPUT_KEY] for request in requests]
    assert all(tensor.dtype == types_pb2.DT_STRING for tensor in inputs)
    assert [[dim.size for dim in tensor.tensor_shape.dim] for tensor in inputs] == [[1], [8]]


def test_each_warmup_request_gets_a_valid_prediction_from_the_saved_model(pushed_model, serving_default):  # noqa: F811
    for log in warmup.read_warmup_requests(pushed_model):
        request = log.predict_log.request
        images = tf.make_ndarray(request.inputs[features.SERVING_INPUT_KEY])

        outputs = serving_default(**{features.SERVING_INPUT_KEY: tf.constant(images)})

        probabilities = outputs[features.PROBABILITY_KEY].numpy()
        assert probabilities.shape == images.shape
        assert np.isfinite(probabilities).all() and ((probabilities >= 0) & (probabilities <= 1)).all()
        assert set(outputs[features.PREDICTED_LABEL_KEY].numpy()) <= {name.encode() for name in features.LABEL_NAMES}


def test_warmup_images_are_distinct_real_jpegs():
    images = warmup.pattern_jpegs(max(warmup.WARMUP_BATCH_SIZES))

    assert len(set(images)) == len(images)
    for image, (width, height) in zip(images, warmup.PATTERN_SIZES * 2):
        assert image[:2] == b"\xff\xd8"
        assert tf.io.decode_jpeg(image).shape == (height, width, 3)


def test_warmup_file_is_the_same_on_every_export(tmp_path):
    first = warmup.write_warmup_requests(str(tmp_path / "a"))
    second = warmup.write_warmup_requests(str(tmp_path / "b"))

    assert first == str(tmp_path / "a" / "assets.extra" / "tf_serving_warmup_requests")
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()


def test_given_images_are_cycled_through_each_batch(tmp_path):
    images = [sample_images.jpeg(seed=1), sample_images.encode("PNG", "RGB", (30, 20), seed=2)]

    warmup.write_warmup_requests(str(tmp_path), images)

    batches = [list(log.predict_log.request.inputs[features.SERVING_INPUT_KEY].string_val)
               for log in warmup.read_warmup_requests(str(tmp_path))]
    assert batches == [images[:1], images * 4]
