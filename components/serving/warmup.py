"""TF Serving warm-up requests written next to the exported SavedModel.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord of PredictionLog)
when it loads a version, so the first real request does not pay for graph initialisation.
The images are JPEGs drawn from a fixed pattern: no dataset is needed at export time.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from components import features

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
SERVING_SIGNATURE = features.SERVING_SIGNATURE
# One request per batch size: a single image, and the client's default batch.
WARMUP_BATCH_SIZES = (1, 8)
# (width, height) of the generated images: landscape, portrait, square, like real photos.
PATTERN_SIZES = ((320, 240), (240, 320), (200, 200), (500, 375))


def warmup_path(export_dir: str) -> str:
    return os.path.join(export_dir, WARMUP_DIR, WARMUP_FILE)


def pattern_jpeg(index: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A deterministic JPEG: colour gradients with diagonal stripes that depend on `index`."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    stripes = ((x + y + 7 * index) // (4 + index % 5)) % 2
    red = x * 255 // max(width - 1, 1)
    green = y * 255 // max(height - 1, 1)
    blue = np.where(stripes == 1, 40 * (index % 6), 255 - 30 * (index % 8))
    pixels = np.stack([red, green, blue], axis=-1).astype(np.uint8)
    return tf.io.encode_jpeg(pixels, quality=90).numpy()


def pattern_jpegs(count: int) -> list[bytes]:
    return [pattern_jpeg(i, PATTERN_SIZES[i % len(PATTERN_SIZES)]) for i in range(count)]


def predict_request(images: Sequence[bytes], model_name: str = "") -> predict_pb2.PredictRequest:
    """A serving_default PredictRequest for a batch of encoded images."""
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SERVING_SIGNATURE)
    )
    request.inputs[features.SERVING_INPUT_KEY].CopyFrom(
        tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)])
    )
    return request


def write_warmup_requests(export_dir: str, image_bytes_list: Optional[Sequence[bytes]] = None) -> str:
    """Writes one request per WARMUP_BATCH_SIZES entry, cycling through the images.

    Without images, uses generated pattern JPEGs. Returns the warm-up file's path.
    """
    images = list(image_bytes_list) if image_bytes_list else pattern_jpegs(max(WARMUP_BATCH_SIZES))
    path = warmup_path(export_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for batch_size in WARMUP_BATCH_SIZES:
            batch = [images[i % len(images)] for i in range(batch_size)]
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=predict_request(batch))
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(export_dir: str) -> list[prediction_log_pb2.PredictionLog]:
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(warmup_path(export_dir))
    ]
