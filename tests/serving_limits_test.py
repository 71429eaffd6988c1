"""What one request may cost: the served signatures refuse an image above the pixel limit
(trainer.max_image_pixels, baked into the export) before decoding it.

Run through TensorFlow's C++ SavedModel loader (TF Serving's, components/serving/c_loader.py) on
the tests' pushed model. A 20000x20000 PNG of zeros is 1.2 MB of bytes and 1.2 GB of pixels;
before the bound, the loader decoded it and answered as for any image, its peak memory
1.3 GB above an ordinary request's.
"""

import pytest
import tensorflow as tf

from components import features
from components.config import TrainerConfig
from components.example_gen.examples import serialized_example
from pipeline.config import rules as config_rules
from pipeline.config.settings import ConfigError, apply_overrides, load_profile
from components.serving import c_loader
from pipeline.serving import check as serving_check

MB = 1e6
LIMIT = TrainerConfig.max_image_pixels
# The Done-when of the bound: an oversized request's peak within this of an ordinary one's.
MEMORY_MARGIN = 100 * MB


@pytest.fixture(scope="module")
def oversized():
    return serving_check.blank_png(20000, 20000)


def test_the_oversized_png_is_small_and_declares_400_megapixels(oversized):
    assert len(oversized) < 1.3 * MB
    assert oversized[16:24] == (20000).to_bytes(4, "big") * 2  # IHDR width, height


def test_a_blank_png_decodes_to_black_pixels_of_its_size():
    pixels = tf.io.decode_png(serving_check.blank_png(300, 200), channels=3)

    assert pixels.shape == (200, 300, 3) and int(tf.reduce_max(pixels)) == 0


def test_an_oversized_image_is_invalid_argument_naming_the_limit_and_the_process_keeps_serving(
        pushed_model, oversized):
    photo = serving_check.image("JPEG", 4000, 3000)
    with c_loader.CSavedModel(pushed_model) as model:
        with pytest.raises(c_loader.RequestError) as error:
            model.run(features.SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: [photo, oversized]})
        after = model.run(features.SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: [photo]})
        assert model.returncode is None  # still running

    assert error.value.code_name == "INVALID_ARGUMENT"
    assert (f"image 1 (PNG 20000x20000) would decode to 400000000 pixels, above the limit of {LIMIT} pixels "
            "per image (trainer.max_image_pixels)") in error.value.message
    assert after[features.PROBABILITY_KEY].shape == (1,)  # a 4000x3000 JPEG (12 megapixels) is served


@pytest.mark.parametrize("signature", [features.EXAMPLES_SIGNATURE, features.TRANSFORM_FEATURES_SIGNATURE])
def test_the_signatures_over_examples_refuse_it_too(pushed_model, oversized, signature):
    example = serialized_example(oversized, 1, b"big.png")
    with c_loader.CSavedModel(pushed_model) as model:
        with pytest.raises(c_loader.RequestError) as error:
            model.run(signature, {features.EXAMPLES_INPUT_KEY: [example]})

    assert error.value.code_name == "INVALID_ARGUMENT" and "trainer.max_image_pixels" in error.value.message


def _peak_after_one_request(model_dir, image):
    """A fresh loader process: one request, then its peak resident memory."""
    with c_loader.CSavedModel(model_dir) as model:
        try:
            model.run(features.SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: [image]})
        except c_loader.RequestError:
            pass
        return model.peak_memory_bytes()


def test_an_oversized_request_costs_the_serving_process_no_more_memory_than_an_ordinary_one(
        pushed_model, oversized):
    ordinary = _peak_after_one_request(pushed_model, serving_check.image("JPEG", 150, 150))
    refused = _peak_after_one_request(pushed_model, oversized)

    assert refused <= ordinary + MEMORY_MARGIN, (
        f"peak {refused / MB:.0f} MB after the oversized request, {ordinary / MB:.0f} MB after an ordinary one")


def test_the_limit_is_a_setting_with_a_rule():
    demo = load_profile("demo")

    assert demo.trainer.max_image_pixels == LIMIT == 40_000_000
    config_rules.check(apply_overrides(demo, ["trainer.max_image_pixels=100000000"]))
    for value in ("0", "999999", "1000000000"):
        with pytest.raises(ConfigError, match="trainer.max_image_pixels=.*an integer from 1000000 to 250000000"):
            config_rules.check(apply_overrides(load_profile("demo"), [f"trainer.max_image_pixels={value}"]))


def test_the_limit_reaches_the_export_through_the_trainers_custom_config():
    config = TrainerConfig.from_custom_config(TrainerConfig(max_image_pixels=2_000_000).to_custom_config())

    assert config.max_image_pixels == 2_000_000
