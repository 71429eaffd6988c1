"""Transform's preprocessing_fn: decode any common image format and resize it.

The transformed image is stored as a bytes feature holding the raw uint8 pixels
[size, size, 3] in row-major order: 1 byte per value (67.5 KB at 150x150) where float32
takes 4 and int64 in tf.Example 1-2 plus varint parsing, and `tf.io.decode_raw` turns a
batch of them back into pixels with one copy. `decode_transformed_images` is that inverse,
shared by the Trainer's input pipeline and the serving signatures.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import tensorflow as tf

from components import features

DEFAULT_IMAGE_SIZE = 150
CHANNELS = 3


def preprocessing_fn(
    inputs: Mapping[str, tf.Tensor], custom_config: Optional[Mapping[str, Any]] = None
) -> dict[str, tf.Tensor]:
    """Raw image bytes -> resized raw uint8 pixels (bytes); the label passes through."""
    size = image_size(custom_config)
    outputs = {features.TRANSFORMED_IMAGE_KEY: encode_images(inputs[features.IMAGE_KEY], size)}
    if features.LABEL_KEY in inputs:
        outputs[features.TRANSFORMED_LABEL_KEY] = tf.reshape(inputs[features.LABEL_KEY], [-1])
    return outputs


def image_size(custom_config: Optional[Mapping[str, Any]]) -> int:
    return int((custom_config or {}).get("image_size") or DEFAULT_IMAGE_SIZE)


def encode_images(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """[batch] or [batch, 1] encoded images -> [batch] strings of size*size*3 raw bytes."""
    flat = tf.reshape(image_bytes, [-1])
    return tf.map_fn(
        lambda one: _raw_bytes(decode_and_resize(one, size)),
        flat,
        fn_output_signature=tf.TensorSpec([], tf.string),
    )


def decode_and_resize(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """One JPEG, PNG, GIF (first frame) or BMP -> uint8 [size, size, 3].

    Resizes like the recipe (bilinear, tf.image.resize), then rounds to uint8. Bytes that
    are no image fail with InvalidArgumentError.
    """
    image = tf.io.decode_image(image_bytes, channels=CHANNELS, expand_animations=False)
    resized = tf.image.resize(image, [size, size])
    return tf.saturate_cast(tf.round(resized), tf.uint8)


def decode_transformed_images(pixels: tf.Tensor, size: int) -> tf.Tensor:
    """[batch] raw-pixel strings (the transformed image) -> float32 [batch, size, size, 3]."""
    flat = tf.io.decode_raw(tf.reshape(pixels, [-1]), tf.uint8)
    return tf.cast(tf.reshape(flat, [-1, size, size, CHANNELS]), tf.float32)


def _raw_bytes(image: tf.Tensor) -> tf.Tensor:
    """The uint8 tensor's bytes without a header.

    A serialized TensorProto ends with its tensor_content field, the raw row-major values,
    so the last num_elements bytes are exactly the pixels.
    """
    num_bytes = tf.size(image)
    serialized = tf.io.serialize_tensor(image)
    return tf.strings.substr(serialized, tf.strings.length(serialized) - num_bytes, num_bytes)
