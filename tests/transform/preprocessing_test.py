"""preprocessing_fn through tft_beam, and the helpers it shares with serving."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from support import sample_images
from components import features
from components.trainer import tfrecords
from components.transform import preprocessing, standalone

SIZE = 40


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """The mixed images and their labels after a real tft_beam Analyze+Transform run."""
    tmp = tmp_path_factory.mktemp("transform")
    images = sample_images.mixed_images()
    labels = [i % 2 for i in range(len(images))]
    graph_dir, pattern = standalone.transform_images(images, labels, str(tmp), SIZE)
    return graph_dir, pattern, images, labels


def _read_transformed(pattern):
    spec = {
        features.TRANSFORMED_IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        features.TRANSFORMED_LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    files = tf.io.gfile.glob(pattern)
    records = list(tfrecords.dataset(files).as_numpy_iterator())
    return tf.io.parse_example(records, spec)


def test_mixed_formats_come_out_at_the_configured_size_in_byte_range(transformed):
    _, pattern, images, labels = transformed

    parsed = _read_transformed(pattern)
    pixels = preprocessing.decode_transformed_images(parsed[features.TRANSFORMED_IMAGE_KEY], SIZE).numpy()

    assert pixels.shape == (len(images), SIZE, SIZE, 3)
    assert pixels.dtype == np.float32
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert np.array_equal(pixels, np.round(pixels))
    assert pixels.max() > 200  # the random images use the full range; nothing was rescaled
    assert sorted(parsed[features.TRANSFORMED_LABEL_KEY].numpy().tolist()) == sorted(labels)


def test_transformed_pixels_match_decoding_and_resizing_each_image(transformed):
    _, pattern, images, _ = transformed

    parsed = _read_transformed(pattern)
    pixels = preprocessing.decode_transformed_images(parsed[features.TRANSFORMED_IMAGE_KEY], SIZE).numpy()

    expected = {preprocessing.decode_and_resize(image, SIZE).numpy().tobytes() for image in images}
    assert {p.astype(np.uint8).tobytes() for p in pixels} == expected


def test_transform_graph_records_the_transformed_schema(transformed):
    graph_dir, _, _, _ = transformed
    spec = tft.TFTransformOutput(graph_dir).transformed_feature_spec()

    assert spec == {
        features.TRANSFORMED_IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        features.TRANSFORMED_LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }


def test_image_size_defaults_to_the_recipe_size():
    assert preprocessing.image_size(None) == 150
    assert preprocessing.image_size({"image_size": 96}) == 96


def test_rank_two_image_input_and_missing_label_are_accepted():
    image = sample_images.jpeg()

    outputs = preprocessing.preprocessing_fn({features.IMAGE_KEY: tf.constant([[image], [image]])}, {"image_size": 8})

    assert list(outputs) == [features.TRANSFORMED_IMAGE_KEY]
    assert tf.strings.length(outputs[features.TRANSFORMED_IMAGE_KEY]).numpy().tolist() == [8 * 8 * 3] * 2


def test_bytes_that_are_no_image_fail_with_invalid_argument():
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocessing.encode_images(tf.constant([b"not an image"]), 8)
