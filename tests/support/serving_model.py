"""The small serving model the serving tests share: an untrained MobileNetV3Small at 32x32
with a real transform graph, exported as the Trainer exports and pushed as the Pusher pushes."""

import functools
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components.config import PipelineConfig, TrainerConfig
from components.serving.versions import push_atomically
from components.trainer import export
from components.trainer import model as model_lib
from components.transform import standalone

from . import sample_images

SIZE = 32
CONFIG = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=SIZE)
MODEL_NAME = PipelineConfig.model_name


@functools.cache
def export_and_push(root: str) -> str:
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
