"""A stand-in for ImageNet pre-training, for the demo on machines without internet.

The recipe transfers an ImageNet-trained base. Keras cannot download those weights offline,
and a base with random weights gives a frozen-base phase nothing to learn from (its pooled
features carry no class information). So, once, a keras.applications base is trained from
scratch on pet images generated with another seed than the sample archive's (none of them
is in the archive), and its weights are saved as a file: the demo then loads them by path,
exactly as a user loads a downloaded weights file or a `gs://` URI.

    python -m data.pretrained_base --output data/generated/mobilenet_v3_small_64.weights.h5
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

from data import generation_lock, pet_images

DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().parent / "generated" / "mobilenet_v3_small_64.weights.h5"
PRETRAINING_VERSION = 3
# Far from the sample archive's seeds (0 by default), so no pre-training image is in it.
PRETRAINING_SEED = 90210


def pretraining_images(count_per_class: int, image_size: int, seed: int = PRETRAINING_SEED):
    """(float32 [n, size, size, 3] in [0, 255], float32 [n] labels), classes alternating."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for index in range(2 * count_per_class):
        label = index % 2
        picture = pet_images.draw_pet(rng, label, pet_images.random_size(rng))
        images.append(np.asarray(picture.resize((image_size, image_size), Image.BILINEAR), np.float32))
        labels.append(label)
    return np.stack(images), np.asarray(labels, np.float32)


def pretrain_base(output, base: str = "mobilenet_v3_small", image_size: int = 64, images_per_class: int = 1000,
                  epochs: int = 10, seed: int = PRETRAINING_SEED) -> pathlib.Path:
    """Trains `base` (BatchNorm in training mode, as pre-training does) and saves its weights."""
    import keras

    from components.config import TrainerConfig
    from components.trainer import model as model_lib

    output = pathlib.Path(output)
    keras.utils.set_random_seed(seed)
    images, labels = pretraining_images(images_per_class, image_size, seed)
    config = TrainerConfig(base=base, weights="none", image_size=image_size, seed=seed)
    spec = model_lib.base_spec(base)
    network = spec.constructor(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    for layer in network._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9  # moving statistics that settle within a short training
    inputs = keras.Input((image_size, image_size, 3))
    x = model_lib.data_augmentation(config.seed)(inputs)
    if spec.rescale is not None:
        x = keras.layers.Rescaling(*spec.rescale)(x)
    x = keras.layers.GlobalAveragePooling2D()(network(x))
    classifier = keras.Model(inputs, keras.layers.Dense(1)(x))
    model_lib.compile_for_phase(classifier, 1e-3)
    print(f"[pretrain] {base} from scratch on {len(labels)} generated images at {image_size}px, {epochs} epochs",
          flush=True)
    classifier.fit(images, labels, batch_size=32, epochs=epochs, verbose=2)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(".partial-" + output.name)
    network.save_weights(str(partial))
    os.replace(partial, output)
    _sidecar(output).write_text(json.dumps(_parameters(base, image_size, images_per_class, epochs, seed)))
    return output


def ensure_pretrained_base(output=DEFAULT_OUTPUT, **parameters) -> pathlib.Path:
    """Returns `output`, pre-training only if it is missing or was made with other parameters."""
    output = pathlib.Path(output)
    wanted = _parameters(**{**_DEFAULTS, **parameters})
    with generation_lock.held(output):
        try:
            recorded = json.loads(_sidecar(output).read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded == wanted and output.is_file():
            return output
        return pretrain_base(output, **{**_DEFAULTS, **parameters})


_DEFAULTS = dict(base="mobilenet_v3_small", image_size=64, images_per_class=1000, epochs=10, seed=PRETRAINING_SEED)


def _parameters(base, image_size, images_per_class, epochs, seed) -> dict:
    return dict(base=base, image_size=image_size, images_per_class=images_per_class, epochs=epochs, seed=seed,
                version=PRETRAINING_VERSION)


def _sidecar(output: pathlib.Path) -> pathlib.Path:
    return output.with_name(output.name + ".json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    parser.add_argument("--base", default=_DEFAULTS["base"])
    parser.add_argument("--image-size", type=int, default=_DEFAULTS["image_size"])
    parser.add_argument("--images-per-class", type=int, default=_DEFAULTS["images_per_class"])
    parser.add_argument("--epochs", type=int, default=_DEFAULTS["epochs"])
    args = parser.parse_args(argv)
    path = ensure_pretrained_base(args.output, base=args.base, image_size=args.image_size,
                                  images_per_class=args.images_per_class, epochs=args.epochs)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
