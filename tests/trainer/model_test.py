"""The recipe's lessons about freezing, fine-tuning and BatchNormalization, asserted."""

import urllib.error

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.config import TrainerConfig
from components.trainer import model as model_lib

XCEPTION_NO_WEIGHTS = TrainerConfig(base="xception", weights="none", image_size=150)
# The training-step tests check which weights one step moves and by how much, the same at any
# image size: they take the smallest Xception (71). Phase 1's step runs eagerly
# (model.run_eagerly), as tracing Xception's gradients costs about 15 s of CPU here; phase 2's
# is traced, as model.fit runs it, since BatchNorm's inference mode inside the traced step is
# what it checks.
XCEPTION_SMALLEST = TrainerConfig(base="xception", weights="none", image_size=model_lib.BASES["xception"].min_image_size)


def _param_counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, non_trainable


def _batch(size, n=2):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(n, size, size, 3)).astype("float32")
    labels = np.array([[0.0], [1.0]] * (n // 2), dtype="float32")
    return images, labels


def _snapshot(weights):
    return [np.array(w.numpy(), copy=True) for w in weights]


def _batch_norm_stats(base):
    return [
        w
        for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in (layer.moving_mean, layer.moving_variance)
    ]


def test_phase_parameter_counts_match_the_recipe_summaries():
    model, base = model_lib.build_model(XCEPTION_NO_WEIGHTS)

    assert _param_counts(model) == (2_049, 20_861_480)
    model_lib.set_phase(base, 2)
    assert _param_counts(model) == (20_809_001, 54_528)


def test_phase1_step_trains_only_the_head():
    model, base = model_lib.build_model(XCEPTION_SMALLEST)
    model_lib.set_phase(base, 1)
    model_lib.compile_for_phase(model, 1e-3)
    model.run_eagerly = True
    head = model.get_layer("logit")
    base_before, head_before = _snapshot(base.weights), _snapshot(head.weights)

    model.train_on_batch(*_batch(XCEPTION_SMALLEST.image_size))

    for before, after in zip(base_before, base.weights):
        np.testing.assert_array_equal(before, after.numpy())
    assert all(not np.array_equal(b, a.numpy()) for b, a in zip(head_before, head.weights))


def test_phase2_step_fine_tunes_base_at_low_rate_with_batch_norm_in_inference_mode():
    model, base = model_lib.build_model(XCEPTION_SMALLEST)
    model_lib.set_phase(base, 2)
    model_lib.compile_for_phase(model, 1e-5)
    kernels = [base.get_layer("block1_conv1").kernel, base.get_layer("block14_sepconv2").pointwise_kernel]
    kernels_before = _snapshot(kernels)
    stats = _batch_norm_stats(base)
    stats_before = _snapshot(stats)
    head_kernel = model.get_layer("logit").kernel
    head_before = np.array(head_kernel.numpy(), copy=True)

    model.train_on_batch(*_batch(XCEPTION_SMALLEST.image_size))

    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)
    for before, after in zip(kernels_before, kernels):
        assert not np.array_equal(before, after.numpy())
    assert len(stats) == 2 * 40
    for before, after in zip(stats_before, stats):
        np.testing.assert_array_equal(before, after.numpy())
    # Adam's first step moves each weight by about the learning rate.
    step = np.abs(head_kernel.numpy() - head_before).max()
    assert 0.5e-5 < step < 1.1e-5


def test_fine_tune_top_layers_unfreezes_only_the_top_of_the_base():
    config = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=64)
    _, base = model_lib.build_model(config)

    model_lib.set_phase(base, 2, fine_tune_top_layers=5)

    assert [layer.trainable for layer in base.layers[-5:]] == [True] * 5
    assert not any(layer.trainable_weights for layer in base.layers[:-5])


@pytest.mark.parametrize("base_name", ["mobilenet_v3_small", "efficientnet_b0"])
def test_bases_that_scale_their_own_input_get_raw_pixels(base_name):
    model, _ = model_lib.build_model(TrainerConfig(base=base_name, weights="none", image_size=64))

    assert "rescaling" not in [layer.name for layer in model.layers]
    assert model.predict(_batch(64)[0], verbose=0).shape == (2, 1)


def test_xception_input_is_rescaled_to_minus_one_one():
    model, _ = model_lib.build_model(XCEPTION_NO_WEIGHTS)
    rescaling = model.get_layer("rescaling")

    np.testing.assert_allclose(rescaling(np.array([0.0, 127.5, 255.0])), [-1.0, 0.0, 1.0])


def test_weights_file_is_loaded_by_path(tmp_path):
    config = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=64)
    _, saved_base = model_lib.build_model(config)
    weights_file = tmp_path / "base.weights.h5"
    saved_base.save_weights(str(weights_file))

    config.weights = str(weights_file)
    _, loaded_base = model_lib.build_model(config)

    for saved, loaded in zip(saved_base.weights, loaded_base.weights):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())


def test_missing_weights_file_names_the_option(tmp_path):
    config = TrainerConfig(base="mobilenet_v3_small", weights=str(tmp_path / "absent.h5"), image_size=64)

    with pytest.raises(model_lib.WeightsUnavailableError, match="TrainerConfig.weights"):
        model_lib.build_model(config)


def test_imagenet_without_network_points_to_the_weights_file_option(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(keras.src.utils.file_utils, "urlretrieve", no_network)
    config = TrainerConfig(base="mobilenet_v3_small", weights="imagenet", image_size=96)

    with pytest.raises(model_lib.WeightsUnavailableError, match="set TrainerConfig.weights"):
        model_lib.build_model(config)


def test_unknown_base_lists_the_choices():
    with pytest.raises(ValueError, match="xception"):
        model_lib.build_model(TrainerConfig(base="resnet9000", weights="none"))


def test_mixed_precision_computes_in_float16_and_keeps_the_logit_in_float32():
    config = TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=32, mixed_precision="true")
    model, base = model_lib.build_model(config)
    assert {layer.dtype_policy.compute_dtype for layer in base.layers if layer.weights} == {"float16"}
    assert model.get_layer("logit").dtype_policy.name == "float32"
    assert model(_batch(32)[0], training=False).dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_strategy_is_the_default_one_without_a_gpu():
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is visible here")
    assert model_lib.distribution_strategy() is tf.distribute.get_strategy()


def test_one_gpu_gets_a_one_device_strategy_that_prefetches_to_it(monkeypatch):
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["/gpu:0"] if kind == "GPU" else [])
    strategy = model_lib.distribution_strategy()
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert strategy.extended.worker_devices == ("/job:localhost/replica:0/task:0/device:GPU:0",)


def test_several_gpus_get_a_mirrored_strategy(monkeypatch):
    created = []
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["/gpu:0", "/gpu:1"] if kind == "GPU" else [])
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", lambda: created.append("mirrored") or "mirrored")
    assert model_lib.distribution_strategy() == "mirrored" and created == ["mirrored"]


def test_model_config_round_trips_through_json_with_the_base_in_inference_mode():
    """Keras's TensorBoard callback writes the graph from model.to_json()."""
    model, base = model_lib.build_model(TrainerConfig(base="mobilenet_v3_small", weights="none", image_size=32))

    rebuilt = keras.models.model_from_json(model.to_json())

    wrapper = rebuilt.get_layer("base")
    assert isinstance(wrapper, model_lib.InferenceMode)
    assert [layer.name for layer in wrapper.layer.layers] == [layer.name for layer in base.layers]
    assert rebuilt.count_params() == model.count_params()


@pytest.mark.parametrize("name", sorted(model_lib.BASES))
def test_each_base_s_forward_cost_is_what_tensorflow_s_profiler_counts(name):
    """A run weighs the Trainer's work with these before it measures this machine (pipeline/environment/notice.py)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    base = model_lib.BASES[name].constructor(include_top=False, weights=None, input_shape=(224, 224, 3))
    forward = tf.function(lambda images: base(images, training=False)).get_concrete_function(
        tf.TensorSpec([1, 224, 224, 3], tf.float32))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    counted = tf.compat.v1.profiler.profile(graph=convert_variables_to_constants_v2(forward).graph, options=options)
    assert counted.total_float_ops / 1e9 == pytest.approx(model_lib.BASES[name].gflops_224, rel=0.01)


@pytest.mark.parametrize("name", sorted(model_lib.BASES))
def test_each_base_s_size_limit_and_layer_count_are_keras_applications_own(name):
    """The settings' rules read these (trainer.image_size, trainer.fine_tune_top_layers)."""
    spec = model_lib.BASES[name]
    smallest = spec.constructor(include_top=False, weights=None,
                                input_shape=(spec.min_image_size, spec.min_image_size, 3))
    assert len(smallest.layers) == spec.layer_count
    too_small = spec.min_image_size - 1
    with pytest.raises(ValueError, match=f"at least {spec.min_image_size}"):
        spec.constructor(include_top=False, weights=None, input_shape=(too_small, too_small, 3))
