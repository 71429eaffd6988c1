"""Phase 1 on cached base features: the frozen base runs once per image and augmentation draw.

In phase 1 the base is frozen and runs in inference mode, so its pooled output for an image
depends only on the image and the augmentation drawn for it. Running it every epoch (20 in
the recipe) repeats the same work; here it runs once per training image for each of K
augmentation draws ("views") and once per validation image (no augmentation), and the
model's own head layers (dropout, dense) train on those features, epoch e on view e mod K.
The head's layers are the model's, so training them trains the model's head; phase 2 then
fine-tunes the whole model as before.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional

import absl.logging
import keras
import numpy as np
import tensorflow as tf

POOL_LAYER, DROPOUT_LAYER, LOGIT_LAYER = "pool", "dropout", "logit"
# Views above this many bytes in total go to .npy files under the spill folder, read back memory-mapped.
MEMORY_BUDGET_BYTES = 2 << 30


@dataclasses.dataclass
class CachedFeatures:
    views: list[np.ndarray]  # K arrays [images, feature_dim], augmented training images
    view_labels: list[np.ndarray]  # the labels in each view's order, [images, 1]
    eval_features: Optional[np.ndarray]
    eval_labels: Optional[np.ndarray]
    base_images: int  # images that went through the base: K x training + validation

    @property
    def feature_dim(self) -> int:
        return int(self.views[0].shape[1])


def feature_extractor(model: keras.Model) -> keras.Model:
    """The model up to its pooled features: augmentation (when called with training=True),
    rescaling, the base (always in inference mode: BatchNorm statistics untouched), pooling."""
    return keras.Model(model.inputs, model.get_layer(POOL_LAYER).output, name="phase1_features")


def head_model(model: keras.Model, feature_dim: int) -> keras.Model:
    """The model's own dropout and dense layers over features: their weights are the model's."""
    features = keras.Input(shape=(feature_dim,), name="features")
    logits = model.get_layer(LOGIT_LAYER)(model.get_layer(DROPOUT_LAYER)(features))
    return keras.Model(features, logits, name="head")


def pooled_size(model: keras.Model) -> int:
    return int(model.get_layer(POOL_LAYER).output.shape[-1])


def compute(
    model: keras.Model,
    train: tf.data.Dataset,
    evaluation: Optional[tf.data.Dataset],
    views: int,
    train_steps: Optional[int] = None,
    eval_steps: Optional[int] = None,
    spill_dir: Optional[str] = None,
) -> CachedFeatures:
    """K passes over `train` with augmentation, one over `evaluation` without; images stream
    through in batches and only the features are kept."""
    extractor = feature_extractor(model)
    augmented = tf.function(lambda images: extractor(images, training=True))
    plain = tf.function(lambda images: extractor(images, training=False))
    result_views, result_labels, total_bytes, base_images = [], [], 0, 0
    for view in range(views):
        features, labels = _one_pass(augmented, train, steps=train_steps)
        base_images += len(features)
        total_bytes += features.nbytes
        if spill_dir and total_bytes > MEMORY_BUDGET_BYTES:
            features = _spill(features, os.path.join(spill_dir, f"phase1-view-{view}.npy"))
        result_views.append(features)
        result_labels.append(labels)
        print(f"[trainer] phase 1 features: view {view + 1}/{views} of {len(features)} training images", flush=True)
    eval_features = eval_labels = None
    if evaluation is not None:
        eval_features, eval_labels = _one_pass(plain, evaluation, steps=eval_steps)
        base_images += len(eval_features)
    return CachedFeatures(result_views, result_labels, eval_features, eval_labels, base_images)


def _one_pass(forward, dataset, steps: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    batches = dataset.take(steps) if steps else dataset
    features, labels = [], []
    for images, batch_labels in batches:
        features.append(forward(images).numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(features), np.concatenate(labels)


def _spill(features: np.ndarray, path: str) -> np.ndarray:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, features)
    absl.logging.info("Phase 1 features over the memory budget: view kept in %s.", path)
    return np.load(path, mmap_mode="r")


def epoch_datasets(cached: CachedFeatures, batch_size: int, first_epoch: int, end_epoch: int, seed: int
                   ) -> tuple[tf.data.Dataset, int]:
    """One dataset of epochs first_epoch..end_epoch-1 in a row, epoch e on view e mod K
    (shuffled anew each epoch), and the steps of one epoch."""
    bases = [tf.data.Dataset.from_tensor_slices((np.asarray(view), labels))
             for view, labels in zip(cached.views, cached.view_labels)]
    images = len(cached.views[0])
    epochs = [bases[epoch % len(bases)].shuffle(images, seed=seed + epoch).batch(batch_size)
              for epoch in range(first_epoch, end_epoch)]
    dataset = epochs[0]
    for following in epochs[1:]:
        dataset = dataset.concatenate(following)
    return dataset.prefetch(tf.data.AUTOTUNE), math.ceil(images / batch_size)


def eval_dataset(cached: CachedFeatures, batch_size: int) -> Optional[tf.data.Dataset]:
    if cached.eval_features is None:
        return None
    return tf.data.Dataset.from_tensor_slices((cached.eval_features, cached.eval_labels)).batch(batch_size)


def remove_spilled(cached: CachedFeatures) -> None:
    """Deletes the files of views that went to disk."""
    for view in cached.views:
        if isinstance(view, np.memmap):
            os.remove(view.filename)  # the mapping stays valid until the array goes
