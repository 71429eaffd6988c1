"""The serving SavedModel: raw image bytes (or tf.Examples) -> Transform graph -> model."""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_transform as tft

from components import features
from components.trainer import warmup
from components.transform import preprocessing

TRANSFORM_FEATURES_SIGNATURE = "transform_features"
EXAMPLES_INPUT_KEY = "examples"


class ServingModule(tf.Module):
    """Tracks the model and the Transform layer; its tf.functions are the signatures."""

    def __init__(self, model: keras.Model, tf_transform_output: tft.TFTransformOutput, image_size: int):
        super().__init__()
        self.model = model
        # Keras 3 layers' variables (seed generator states included) are not all reachable
        # through the model object for tf.saved_model; listing them tracks them.
        self.model_variables = list(model.variables)
        self.tft_layer = tf_transform_output.transform_features_layer()
        self._image_size = image_size
        raw_spec = tf_transform_output.raw_feature_spec()
        self._image_spec = raw_spec[features.IMAGE_KEY]
        self._raw_spec = raw_spec

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.SERVING_INPUT_KEY)])
    def serve_image_bytes(self, image_bytes):
        raw_images = tf.reshape(image_bytes, [-1, *self._image_spec.shape])
        outputs = self._predict({features.IMAGE_KEY: raw_images})
        outputs[features.PREDICTED_LABEL_KEY] = predicted_label(outputs[features.PROBABILITY_KEY])
        return outputs

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT_KEY)])
    def serve_examples(self, examples):
        """For TFMA: reads only the image, so examples without a label work too."""
        raw = tf.io.parse_example(examples, {features.IMAGE_KEY: self._image_spec})
        return self._predict(raw)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT_KEY)])
    def transform_features(self, examples):
        return self.tft_layer(tf.io.parse_example(examples, self._raw_spec))

    def _predict(self, raw_features):
        transformed = self.tft_layer(raw_features)
        images = preprocessing.decode_transformed_images(
            transformed[features.TRANSFORMED_IMAGE_KEY], self._image_size
        )
        logits = tf.reshape(tf.cast(self.model(images, training=False), tf.float32), [-1])
        return {features.PROBABILITY_KEY: tf.sigmoid(logits), features.LOGIT_KEY: logits}

    def signatures(self) -> dict:
        return {
            "serving_default": self.serve_image_bytes,
            features.EXAMPLES_SIGNATURE: self.serve_examples,
            TRANSFORM_FEATURES_SIGNATURE: self.transform_features,
        }


def predicted_label(probability: tf.Tensor) -> tf.Tensor:
    """"dog" when probability > 0.5, "cat" otherwise."""
    is_dog = tf.cast(probability > 0.5, tf.int32)
    return tf.gather(tf.constant(features.LABEL_NAMES), is_dog)


def export_serving_model(
    model: keras.Model, tf_transform_output: tft.TFTransformOutput, image_size: int, export_dir: str
) -> None:
    module = ServingModule(model, tf_transform_output, image_size)
    tf.saved_model.save(module, export_dir, signatures=module.signatures())
    warmup.write_warmup_requests(export_dir)
