"""The serving SavedModel: raw bytes in, the same probability as the Keras model out."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from support import sample_images
from components import features
from components.config import TrainerConfig
from components.example_gen.examples import serialized_example
from components.trainer import export
from components.trainer import model as model_lib
from components.transform import preprocessing, standalone
from pipeline.serving import check

SIZE = 32
CONFIG = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=SIZE)


@pytest.fixture(scope="module")
def transform_graph(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transform")
    graph_dir, _ = standalone.transform_images(sample_images.mixed_images(), [0, 1, 0, 1, 0], str(tmp), SIZE)
    return graph_dir


@pytest.fixture(scope="module")
def exported(tmp_path_factory, transform_graph):
    """(Keras model, loaded SavedModel) for an untrained model and a real transform graph."""
    tmp = tmp_path_factory.mktemp("export")
    model, _ = model_lib.build_model(CONFIG)
    export_dir = str(tmp / "serving_model")
    export.export_serving_model(model, tft.TFTransformOutput(transform_graph), SIZE, export_dir)
    return model, tf.saved_model.load(export_dir)


def test_a_mixed_precision_model_serves_float32(tmp_path, transform_graph):
    """float16 inside, float32 out: the logit layer stays float32, and so does every signature."""
    config = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=SIZE, mixed_precision="true")
    model, base = model_lib.build_model(config)
    assert {layer.dtype_policy.compute_dtype for layer in base.layers if layer.weights} == {"float16"}
    export_dir = str(tmp_path / "serving_model")
    export.export_serving_model(model, tft.TFTransformOutput(transform_graph), SIZE, export_dir)
    loaded = tf.saved_model.load(export_dir)

    served = _serve(loaded, [sample_images.jpeg(seed=3)])
    examples = loaded.signatures[features.EXAMPLES_SIGNATURE](**{
        export.EXAMPLES_INPUT_KEY: tf.constant([serialized_example(sample_images.jpeg(seed=3), 1, b"a.jpg")])})

    assert served[features.PROBABILITY_KEY].dtype == tf.float32
    assert served[features.LOGIT_KEY].dtype == tf.float32
    assert examples[features.PROBABILITY_KEY].dtype == tf.float32
    np.testing.assert_allclose(served[features.PROBABILITY_KEY].numpy(), _keras_probability(model, sample_images.jpeg(seed=3)),
                               atol=2e-3)


def _keras_probability(model, image_bytes):
    pixels = tf.cast(preprocessing.decode_and_resize(image_bytes, SIZE), tf.float32)[tf.newaxis]
    return tf.sigmoid(model(pixels, training=False)).numpy().reshape(-1)


def _serve(loaded, images):
    return loaded.signatures["serving_default"](**{features.SERVING_INPUT_KEY: tf.constant(images)})


def test_signatures_and_their_tensor_names(exported):
    _, loaded = exported
    signatures = loaded.signatures

    assert set(signatures) == {"serving_default", features.EXAMPLES_SIGNATURE, export.TRANSFORM_FEATURES_SIGNATURE}
    serving = signatures["serving_default"]
    assert list(serving.structured_input_signature[1]) == [features.SERVING_INPUT_KEY]
    assert set(serving.structured_outputs) == {features.PROBABILITY_KEY, features.PREDICTED_LABEL_KEY, features.LOGIT_KEY}
    assert serving.structured_outputs[features.PROBABILITY_KEY].dtype == tf.float32
    examples = signatures[features.EXAMPLES_SIGNATURE]
    assert list(examples.structured_input_signature[1]) == [export.EXAMPLES_INPUT_KEY]
    assert set(examples.structured_outputs) == {features.PROBABILITY_KEY, features.LOGIT_KEY}


def test_jpeg_gets_the_keras_models_probability(exported):
    model, loaded = exported
    image = sample_images.jpeg(seed=7)

    outputs = _serve(loaded, [image])

    np.testing.assert_allclose(outputs[features.PROBABILITY_KEY].numpy(), _keras_probability(model, image), atol=1e-5)
    np.testing.assert_allclose(tf.sigmoid(outputs[features.LOGIT_KEY]).numpy(), outputs[features.PROBABILITY_KEY].numpy(), atol=1e-6)
    expected_label = b"dog" if outputs[features.PROBABILITY_KEY].numpy()[0] > 0.5 else b"cat"
    assert outputs[features.PREDICTED_LABEL_KEY].numpy().tolist() == [expected_label]


def test_batch_of_mixed_sizes_and_formats(exported):
    model, loaded = exported
    images = sample_images.mixed_images()

    probabilities = _serve(loaded, images)[features.PROBABILITY_KEY].numpy()

    expected = np.concatenate([_keras_probability(model, image) for image in images])
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_garbage_bytes_fail_with_invalid_argument(exported):
    _, loaded = exported

    with pytest.raises(tf.errors.InvalidArgumentError):
        _serve(loaded, [b"definitely not an image"])
    assert _serve(loaded, [sample_images.jpeg()])[features.PROBABILITY_KEY].shape == (1,)


def test_examples_signature_reads_examples_with_or_without_label(exported):
    _, loaded = exported
    image = sample_images.jpeg(seed=3)
    with_label = serialized_example(image, 1, b"a.jpg")
    without_label = tf.train.Example(
        features=tf.train.Features(
            feature={features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
        )
    ).SerializeToString()

    outputs = loaded.signatures[features.EXAMPLES_SIGNATURE](**{export.EXAMPLES_INPUT_KEY: tf.constant([with_label, without_label])})

    expected = _serve(loaded, [image])[features.PROBABILITY_KEY].numpy()[0]
    np.testing.assert_allclose(outputs[features.PROBABILITY_KEY].numpy(), [expected, expected], atol=1e-6)


def test_transform_features_signature_gives_the_transformed_example(exported):
    _, loaded = exported
    image = sample_images.jpeg(seed=4)

    outputs = loaded.signatures[export.TRANSFORM_FEATURES_SIGNATURE](
        **{export.EXAMPLES_INPUT_KEY: tf.constant([serialized_example(image, 1, b"")])}
    )

    assert outputs[features.TRANSFORMED_LABEL_KEY].numpy().tolist() == [1]
    pixels = preprocessing.decode_transformed_images(outputs[features.TRANSFORMED_IMAGE_KEY], SIZE)
    np.testing.assert_array_equal(pixels[0], tf.cast(preprocessing.decode_and_resize(image, SIZE), tf.float32))


def test_every_signature_refuses_an_image_above_the_default_limit_naming_it(exported):
    _, loaded = exported
    big = check.blank_png(7000, 6000)  # 42 megapixels: 126 MB decoded, 0.1 MB encoded
    example = serialized_example(big, 1, b"big.png")
    calls = [lambda: _serve(loaded, [sample_images.jpeg(), big])] + [
        lambda name=name: loaded.signatures[name](**{export.EXAMPLES_INPUT_KEY: tf.constant([example])})
        for name in (features.EXAMPLES_SIGNATURE, export.TRANSFORM_FEATURES_SIGNATURE)]

    for call in calls:
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"above the limit of 40000000 pixels per image "
                                                                 r"\(trainer.max_image_pixels\)"):
            call()
    assert _serve(loaded, [check.blank_png(8000, 5000)])[features.PROBABILITY_KEY].shape == (1,)  # 40 Mpx: at it


def test_the_export_serves_the_limit_it_is_given(exported, transform_graph):
    model, _ = exported
    transform_output = tft.TFTransformOutput(transform_graph)
    functions = export.ServingFunctions(model, transform_output.transform_features_layer(),
                                        transform_output.raw_feature_spec(), SIZE, max_image_pixels=1_000_000)
    serve = tf.function(functions.serve_image_bytes, autograph=False)

    assert serve(tf.constant([check.blank_png(1000, 1000)]))[features.PROBABILITY_KEY].shape == (1,)
    with pytest.raises(tf.errors.InvalidArgumentError, match="image 0 .PNG 1000x1001. would decode to 1001000 pixels, "
                                                             "above the limit of 1000000 pixels"):
        serve(tf.constant([check.blank_png(1000, 1001)]))
