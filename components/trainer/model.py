"""The recipe's model: augmentation, the base's input scaling, a pretrained base, a new head.

The model takes float32 images [batch, size, size, 3] with values in [0, 255] (the
transformed image, cast) and returns one logit per image ("dog" is positive).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from typing import Callable, Iterator, Optional

import keras
import tensorflow as tf

from components.config import TrainerConfig

IMAGENET = "imagenet"
ONE_GPU = "/gpu:0"
NO_WEIGHTS = ("none", "")


@dataclasses.dataclass(frozen=True)
class BaseSpec:
    """How to build a keras.applications base and scale [0, 255] pixels for it."""

    constructor: Callable[..., keras.Model]
    # Rescaling(scale, offset) applied before the base; None when the base rescales itself.
    rescale: Optional[tuple[float, float]]
    # The smallest width and height keras.applications accepts for this base.
    min_image_size: int
    # len(base.layers) without the top: the most layers trainer.fine_tune_top_layers can name.
    layer_count: int
    # Floating-point operations of one forward pass of a 224x224 image, as TensorFlow's profiler
    # counts them: the cost a run weighs before it measures this machine (components/trainer/cost.py).
    gflops_224: float


# Xception expects [-1, 1] (the recipe's Rescaling layer); MobileNetV3 and EfficientNet
# include their own preprocessing and expect [0, 255].
BASES = {
    "xception": BaseSpec(keras.applications.Xception, (1 / 127.5, -1.0), min_image_size=71, layer_count=132,
                         gflops_224=9.13),
    "mobilenet_v3_small": BaseSpec(keras.applications.MobileNetV3Small, None, min_image_size=32, layer_count=157,
                                   gflops_224=0.116),
    "mobilenet_v3_large": BaseSpec(keras.applications.MobileNetV3Large, None, min_image_size=32, layer_count=187,
                                   gflops_224=0.443),
    "efficientnet_b0": BaseSpec(keras.applications.EfficientNetB0, None, min_image_size=32, layer_count=237,
                                gflops_224=0.800),
}


class WeightsUnavailableError(RuntimeError):
    """The configured base weights could not be loaded."""


def build_model(config: TrainerConfig) -> tuple[keras.Model, keras.Model]:
    """Returns (model, base), the base frozen as for phase 1.

    The base runs in inference mode in both phases (see InferenceMode), so its
    BatchNormalization statistics never move, as the recipe requires.
    """
    spec = base_spec(config.base)
    shape = (config.image_size, config.image_size, 3)
    with _dtype_policy("mixed_float16" if uses_mixed_precision(config) else None):
        base = _build_base(spec, shape, config)
        base.trainable = False
        inputs = keras.Input(shape=shape, dtype="float32", name="image")
        x = data_augmentation(config.seed)(inputs)
        if spec.rescale is not None:
            scale, offset = spec.rescale
            x = keras.layers.Rescaling(scale=scale, offset=offset, name="rescaling")(x)
        x = InferenceMode(base, name="base")(x)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        x = keras.layers.Dropout(config.dropout, seed=config.seed, name="dropout")(x)
        logits = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, logits, name="transfer_model"), base


def uses_mixed_precision(config: TrainerConfig) -> bool:
    """Builds in mixed precision only when told so: run_fn resolves "auto" for the devices it
    has (components/trainer/devices.py) before building."""
    return str(config.mixed_precision).lower() == "true"


@keras.saving.register_keras_serializable(package="cats_dogs_tfx")
class InferenceMode(keras.layers.Layer):
    """Always calls the wrapped layer with training=False.

    The recipe's `base(x, training=False)` is not enough in Keras 3: a functional model
    overrides the training argument of its inner calls with the one fit() passes, so
    BatchNormalization would update its statistics during fine-tuning.

    Serializable (get_config / from_config), so the model's JSON config, which Keras's
    TensorBoard callback writes as the graph, holds the wrapped base.
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs):
        return self.layer(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": keras.saving.serialize_keras_object(self.layer)}

    @classmethod
    def from_config(cls, config: dict) -> "InferenceMode":
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(config.pop("layer"))
        return cls(layer, **config)


def data_augmentation(seed: int) -> keras.Sequential:
    """The recipe's augmentation; Keras applies it only when training=True."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.1, seed=seed),
        ],
        name="augmentation",
    )


def base_spec(name: str) -> BaseSpec:
    try:
        return BASES[name]
    except KeyError:
        raise ValueError(
            f"Unknown base {name!r} in TrainerConfig.base; choose one of {sorted(BASES)}."
        ) from None


def set_phase(base: keras.Model, phase: int, fine_tune_top_layers: int = 0) -> None:
    """Phase 1 freezes the base; phase 2 unfreezes it (or only its top N layers).

    Recompile the model after calling this: compile() captures the trainable state.
    """
    if phase == 1:
        base.trainable = False
    elif phase == 2:
        base.trainable = True
        if fine_tune_top_layers > 0:
            for layer in base.layers[:-fine_tune_top_layers]:
                layer.trainable = False
    else:
        raise ValueError(f"phase must be 1 (frozen base) or 2 (fine-tuning), got {phase}.")


def compile_for_phase(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )


def has_pretrained_weights(config: TrainerConfig) -> bool:
    return not (config.weights is None or str(config.weights).lower() in NO_WEIGHTS)


def scale_for_base(base_name: str, images: tf.Tensor) -> tf.Tensor:
    """[0, 255] images as the model hands them to the base (after its Rescaling, if any)."""
    spec = base_spec(base_name)
    if spec.rescale is None:
        return images
    scale, offset = spec.rescale
    return images * scale + offset


def calibrate_batch_norm(base: keras.Model, base_inputs: tf.Tensor) -> None:
    """Sets every BatchNormalization's moving statistics from one batch of training images.

    Inference-mode BatchNorm is right for a pretrained base: it keeps ImageNet's statistics.
    A base with random weights has none worth keeping, and with the initial ones (mean 0,
    variance 1) activations shrink layer after layer until the pooled features are ~1e-10
    and no head can learn from them. One training-mode pass with momentum 0 gives each layer
    the statistics of the data it will see; they then stay fixed, as in the recipe.
    """
    layers = [layer for layer in base._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    base_trainable = base.trainable
    base.trainable = True  # Keras updates BatchNorm statistics only in trainable layers.
    for layer in layers:
        layer.momentum = 0.0
    try:
        base(base_inputs, training=True)
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum, layer.trainable = momentum, trainable
        base.trainable = base_trainable


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over several visible GPUs; OneDeviceStrategy on one GPU, which
    prefetches each next batch into the GPU's memory while a step runs; the default strategy
    on the CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if gpus:
        return tf.distribute.OneDeviceStrategy(ONE_GPU)
    return tf.distribute.get_strategy()


def _build_base(spec: BaseSpec, shape: tuple[int, int, int], config: TrainerConfig) -> keras.Model:
    weights = config.weights
    if not has_pretrained_weights(config):
        return spec.constructor(include_top=False, weights=None, input_shape=shape)
    if weights == IMAGENET:
        return _build_imagenet_base(spec, shape, config.base)
    with _local_copy(weights) as local_path:
        return spec.constructor(include_top=False, weights=local_path, input_shape=shape)


def _build_imagenet_base(spec: BaseSpec, shape: tuple[int, int, int], name: str) -> keras.Model:
    try:
        return spec.constructor(include_top=False, weights=IMAGENET, input_shape=shape)
    except Exception as error:
        if "URL fetch failure" not in str(error):
            raise
        raise WeightsUnavailableError(
            f"Could not download the ImageNet weights of base {name!r} ({error}). "
            "Without network access, put the base's 'notop' weights file somewhere "
            "readable (local path or gs:// URI) and set TrainerConfig.weights to it, "
            "or set weights='none' to train from random weights."
        ) from error


@contextlib.contextmanager
def _local_copy(uri: str) -> Iterator[str]:
    """Copies a weights file readable by tf.io.gfile (local, gs://, ...) to a local file.

    Keras reads h5 files with h5py, which only opens local paths.
    """
    if not tf.io.gfile.exists(uri):
        raise WeightsUnavailableError(
            f"Weights file {uri!r} (TrainerConfig.weights) does not exist. Use 'imagenet', "
            "'none', or a path/URI to the base's notop weights file."
        )
    with tempfile.TemporaryDirectory() as tmp:
        local_path = os.path.join(tmp, os.path.basename(uri.rstrip("/")))
        tf.io.gfile.copy(uri, local_path, overwrite=True)
        yield local_path


@contextlib.contextmanager
def _dtype_policy(policy: Optional[str]) -> Iterator[None]:
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
