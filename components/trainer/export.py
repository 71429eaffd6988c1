"""The serving SavedModel: raw image bytes (or tf.Examples) -> Transform graph -> model.

Every signature first checks each image's size in its header (preprocessing.bounded_images):
a request holding an image that would decode to more than `max_image_pixels` pixels (a
setting, trainer.max_image_pixels, baked into the signatures as a constant) fails with
INVALID_ARGUMENT naming the image and the limit before the Transform graph decodes anything.
Training does not check: Transform decodes the training images with the same graph, unbounded.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf
import tensorflow_transform as tft

from components import features
from components.config import TrainerConfig
from components.serving import warmup
from components.transform import preprocessing

SERVING_SIGNATURE = features.SERVING_SIGNATURE
TRANSFORM_FEATURES_SIGNATURE = features.TRANSFORM_FEATURES_SIGNATURE
EXAMPLES_INPUT_KEY = features.EXAMPLES_INPUT_KEY


class ServingFunctions:
    """The signatures' functions over the model and the Transform layer."""

    def __init__(self, model: keras.Model, tft_layer: tf.Module, raw_spec: dict, image_size: int,
                 max_image_pixels: int = TrainerConfig.max_image_pixels):
        self._model = model
        self._tft_layer = tft_layer
        self._image_size = image_size
        self._image_spec = raw_spec[features.IMAGE_KEY]
        self._raw_spec = raw_spec
        self._max_image_pixels = int(max_image_pixels)

    def serve_image_bytes(self, image_bytes):
        raw_images = tf.reshape(image_bytes, [-1, *self._image_spec.shape])
        outputs = self._predict({features.IMAGE_KEY: raw_images})
        outputs[features.PREDICTED_LABEL_KEY] = predicted_label(outputs[features.PROBABILITY_KEY])
        return outputs

    def serve_examples(self, examples):
        """For TFMA: reads only the image, so examples without a label work too."""
        raw = tf.io.parse_example(examples, {features.IMAGE_KEY: self._image_spec})
        return self._predict(raw)

    def transform_features(self, examples):
        return self._transform(tf.io.parse_example(examples, self._raw_spec))

    def _transform(self, raw_features):
        """The Transform graph on raw features whose images passed the size check."""
        raw_features = dict(raw_features)
        raw_features[features.IMAGE_KEY] = preprocessing.bounded_images(
            raw_features[features.IMAGE_KEY], self._max_image_pixels)
        return self._tft_layer(raw_features)

    def _predict(self, raw_features):
        transformed = self._transform(raw_features)
        images = preprocessing.decode_transformed_images(
            transformed[features.TRANSFORMED_IMAGE_KEY], self._image_size
        )
        logits = tf.reshape(tf.cast(self._model(images, training=False), tf.float32), [-1])
        return {features.PROBABILITY_KEY: tf.sigmoid(logits), features.LOGIT_KEY: logits}


def predicted_label(probability: tf.Tensor) -> tf.Tensor:
    """"dog" when probability > 0.5, "cat" otherwise."""
    is_dog = tf.cast(probability > 0.5, tf.int32)
    return tf.gather(tf.constant(features.LABEL_NAMES), is_dog)


def export_serving_model(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput, image_size: int, export_dir: str,
    max_image_pixels: int = TrainerConfig.max_image_pixels,
) -> None:
    """Writes the SavedModel with Keras's ExportArchive, the export Keras made for TF Serving.

    Its signatures refuse an image above `max_image_pixels` pixels before decoding it.

    A Keras 3 model held by a tf.Module and saved with tf.saved_model.save loads in Python's
    object loader but not in TensorFlow's C++ loader, which TF Serving uses ("Could not find
    variable ..."): ExportArchive tracks the variables each signature uses so that the C++
    loader restores them. So the model itself is not tracked: its variables come in through the
    signatures, and tracking it would only add ExportArchive's walk of every layer in search of
    lookup tables, about half the export's time. The Transform layer is, for its assets.
    """
    tft_layer = tf_transform_output.transform_features_layer()
    functions = ServingFunctions(model, tft_layer, tf_transform_output.raw_feature_spec(), image_size,
                                 max_image_pixels)
    archive = keras.export.ExportArchive()
    archive.track(tft_layer)  # the Transform graph, with its assets, inside the export
    string_batch = functools.partial(tf.TensorSpec, [None], tf.string)
    archive.add_endpoint(
        SERVING_SIGNATURE, functions.serve_image_bytes, [string_batch(name=features.SERVING_INPUT_KEY)]
    )
    archive.add_endpoint(features.EXAMPLES_SIGNATURE, functions.serve_examples, [string_batch(name=EXAMPLES_INPUT_KEY)])
    archive.add_endpoint(
        TRANSFORM_FEATURES_SIGNATURE, functions.transform_features, [string_batch(name=EXAMPLES_INPUT_KEY)]
    )
    archive.write_out(export_dir, verbose=False)
    warmup.write_warmup_requests(export_dir)
