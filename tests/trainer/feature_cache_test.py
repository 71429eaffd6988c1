"""Phase 1 on cached base features: the same head, trained on K augmented views, base untouched."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from support import sample_images
from components.config import TrainerConfig
from components.trainer import feature_cache, training
from components.trainer import model as model_lib
from components.transform import standalone

SIZE = 32
IMAGES = 6
BATCH = 2
CONFIG = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=SIZE, batch_size=BATCH,
                       phase1_epochs=3, phase2_epochs=1, phase2_learning_rate=1e-4, phase1_augmented_views=2)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("examples")
    images = [sample_images.jpeg(seed=i, size=(40 + 10 * i, 50)) for i in range(IMAGES)]
    _, pattern = standalone.transform_images(images, [0, 1] * (IMAGES // 2), str(tmp / "transform"), SIZE)
    return pattern


class BaseImageCounter:
    """Counts the images every call of the base sees, in eager and in compiled code alike."""

    def __init__(self, monkeypatch):
        self.images = tf.Variable(0, dtype=tf.int64)
        original = model_lib.InferenceMode.call
        counter = self

        def counted_call(layer, inputs):
            counter.images.assign_add(tf.cast(tf.shape(inputs)[0], tf.int64))
            return original(layer, inputs)

        monkeypatch.setattr(model_lib.InferenceMode, "call", counted_call)

    @property
    def count(self) -> int:
        return int(self.images.numpy())


def build(config):
    keras.utils.set_random_seed(config.seed)
    model, base = model_lib.build_model(config)
    return model, base


def datasets(pattern, config):
    train = training.transformed_dataset([pattern], config, training=True)
    evaluation = training.transformed_dataset([pattern], config, training=False)
    return train, evaluation


def batch_norm_statistics(base):
    return [w.numpy().copy() for layer in base._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)
            for w in (layer.moving_mean, layer.moving_variance)]


def test_phase1_runs_the_base_k_times_per_training_image_and_once_per_validation_image(examples, monkeypatch):
    counter = BaseImageCounter(monkeypatch)
    model, base = build(CONFIG)
    train, evaluation = datasets(examples, CONFIG)
    statistics = batch_norm_statistics(base)

    history = training.train_two_phases(model, base, dataclasses.replace(CONFIG, phase2_epochs=0),
                                        train, evaluation)

    assert counter.count == CONFIG.phase1_augmented_views * IMAGES + IMAGES  # K x train + 1 x validation
    assert history["epoch"] == [1, 2, 3] and history["phase"] == [1, 1, 1]
    for key in ("loss", "binary_accuracy", "val_loss", "val_binary_accuracy"):
        assert len(history[key]) == 3 and all(np.isfinite(history[key]))
    for before, after in zip(statistics, batch_norm_statistics(base)):
        np.testing.assert_array_equal(before, after)  # features came from inference mode


def test_the_direct_path_runs_the_base_every_epoch(examples, monkeypatch):
    counter = BaseImageCounter(monkeypatch)
    config = dataclasses.replace(CONFIG, phase1_feature_cache=False, phase2_epochs=0)
    model, base = build(config)
    train, evaluation = datasets(examples, config)
    training.train_two_phases(model, base, config, train, evaluation)
    assert counter.count == config.phase1_epochs * (IMAGES + IMAGES)


def test_the_head_trained_on_features_is_the_model_s_head(examples):
    model, base = build(CONFIG)
    train, evaluation = datasets(examples, CONFIG)
    logit = model.get_layer(feature_cache.LOGIT_LAYER)
    before = [w.numpy().copy() for w in logit.weights]
    base_before = [w.numpy().copy() for w in base.weights]

    training.train_two_phases(model, base, dataclasses.replace(CONFIG, phase2_epochs=0), train, evaluation)

    head = feature_cache.head_model(model, feature_cache.pooled_size(model))
    assert head.get_layer(feature_cache.LOGIT_LAYER) is logit
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, logit.weights))  # trained
    for b, w in zip(base_before, base.weights):
        np.testing.assert_array_equal(b, w.numpy())  # frozen base unchanged
    # The full model now predicts with the trained head: its logit from the pooled features is the head's.
    images, _ = next(iter(evaluation))
    pooled = feature_cache.feature_extractor(model)(images, training=False)
    np.testing.assert_allclose(model(images, training=False).numpy(), head(pooled, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_epoch_e_trains_on_view_e_mod_k():
    views = [np.full((4, 3), k, dtype=np.float32) for k in range(3)]
    labels = [np.zeros((4, 1), dtype=np.float32)] * 3
    cached = feature_cache.CachedFeatures(views, labels, None, None, base_images=12)
    data, steps = feature_cache.epoch_datasets(cached, batch_size=2, first_epoch=2, end_epoch=7, seed=1)
    seen = [float(batch[0].numpy()[0, 0]) for batch in data]
    assert steps == 2
    assert seen == [view for epoch in range(2, 7) for view in [epoch % 3] * steps]


def test_views_over_the_memory_budget_go_to_files_and_are_removed(examples, tmp_path, monkeypatch):
    monkeypatch.setattr(feature_cache, "MEMORY_BUDGET_BYTES", 1)
    model, _ = build(CONFIG)
    train, evaluation = datasets(examples, CONFIG)
    cached = feature_cache.compute(model, train, evaluation, views=2, spill_dir=str(tmp_path))
    assert all(isinstance(view, np.memmap) for view in cached.views)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phase1-view-0.npy", "phase1-view-1.npy"]
    assert cached.views[0].shape == (IMAGES, feature_cache.pooled_size(model))
    feature_cache.remove_spilled(cached)
    assert list(tmp_path.iterdir()) == []
