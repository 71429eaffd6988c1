"""The pushed model in TensorFlow's C++ SavedModel loader, the one TF Serving uses.

`components/serving/run_saved_model.c` is compiled here against the TensorFlow wheel's C API and
runs in a process with no Python in it: TF_LoadSessionFromSavedModel (tag "serve"), then
TF_SessionRun per request. Python's object loader (tf.saved_model.load) loads models that
this loader cannot run, so only this loader tells whether TF Serving can serve a version.
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from support import sample_images
from components import features
from components.trainer import export
from components.serving import c_loader
from pipeline.serving import check as serving_check


@pytest.fixture(scope="module")
def outcomes(pushed_model):
    return serving_check.check(pushed_model)


def test_c_loader_runs_every_signature_and_warmup_request_like_pythons_loader(outcomes):
    failed = [(outcome.request.name, outcome.detail) for outcome in outcomes if not outcome.passed]

    assert failed == []
    covered = {(outcome.request.signature, outcome.request.name.split(":")[0]) for outcome in outcomes}
    assert {
        ("serving_default", "images in one batch"),
        ("serving_default", "a batch of 32 JPEGs"),
        ("serving_default", "an undecodable image"),
        ("serving_default", "a JPEG and a 20000x20000 PNG (1.2 MB)"),
        (features.EXAMPLES_SIGNATURE, "a tf.Example holding a 20000x20000 PNG (1.2 MB)"),
        ("serving_default", "the next request after the error"),
        (features.EXAMPLES_SIGNATURE, "tf.Examples"),
        (export.TRANSFORM_FEATURES_SIGNATURE, "tf.Examples"),
        ("serving_default", "warm-up request 1 (1 images)"),
        ("serving_default", "warm-up request 2 (8 images)"),
    } <= covered


def test_one_batch_mixes_every_format_and_the_extreme_sizes():
    formats = {(fmt, width, height) for fmt, width, height in serving_check.IMAGE_FORMATS}

    assert {fmt for fmt, _, _ in formats} == {"JPEG", "PNG", "GIF", "BMP"}
    assert {(1, 1), (4000, 3000)} <= {(width, height) for _, width, height in formats}


def test_probabilities_vary_and_equal_pythons_loader(pushed_model):
    images = [sample_images.jpeg(seed=i, size=(60 + 7 * i, 40 + 5 * i)) for i in range(8)]
    with c_loader.CSavedModel(pushed_model) as model:
        outputs = model.run("serving_default", {features.SERVING_INPUT_KEY: images})
    expected = tf.saved_model.load(pushed_model).signatures["serving_default"](
        **{features.SERVING_INPUT_KEY: tf.constant(images)})

    probabilities = outputs[features.PROBABILITY_KEY]
    assert probabilities.shape == (8,) and np.ptp(probabilities) > 1e-3  # the model tells images apart
    np.testing.assert_allclose(probabilities, expected[features.PROBABILITY_KEY].numpy(), atol=1e-5)
    assert list(outputs[features.PREDICTED_LABEL_KEY]) == list(expected[features.PREDICTED_LABEL_KEY].numpy())


def test_undecodable_image_is_invalid_argument_and_the_process_keeps_serving(pushed_model):
    with c_loader.CSavedModel(pushed_model) as model:
        with pytest.raises(c_loader.RequestError) as error:
            model.run("serving_default", {features.SERVING_INPUT_KEY: [sample_images.jpeg(), b"\x00garbage"]})
        after = model.run("serving_default", {features.SERVING_INPUT_KEY: [sample_images.jpeg()]})
        assert model.returncode is None  # still running

    assert error.value.code_name == "INVALID_ARGUMENT" and "Unknown image file format" in error.value.message
    assert after[features.PROBABILITY_KEY].shape == (1,)


def test_a_file_that_is_no_saved_model_is_reported(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"not a SavedModel")

    with pytest.raises(c_loader.CLoaderError, match="does not load"):
        c_loader.CSavedModel(str(tmp_path))


def test_a_model_the_c_loader_cannot_load_is_reported_with_its_reason(pushed_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(pushed_model, broken)
    (broken / "variables" / "variables.index").write_bytes(b"not a checkpoint index")

    with pytest.raises(c_loader.CLoaderError, match="the SavedModel does not load"):
        with c_loader.CSavedModel(str(broken)) as model:
            model.run("serving_default", {features.SERVING_INPUT_KEY: [sample_images.jpeg()]})


def test_the_former_tf_module_export_fails_the_c_loader_check(former_export):
    assert tf.saved_model.load(former_export).signatures["serving_default"] is not None  # Python loads it

    outcomes = serving_check.check(former_export)

    predictions = [outcome for outcome in outcomes if outcome.request.signature == "serving_default"
                   and not outcome.request.expect_code]
    assert predictions and not any(outcome.passed for outcome in predictions)
    assert all("Could not find variable" in outcome.detail for outcome in predictions)
    assert {outcome.request.name for outcome in predictions} >= {"warm-up request 1 (1 images)", "a batch of 32 JPEGs"}


def run_check_serving(model_dir):
    return subprocess.run([sys.executable, "-m", "pipeline", "check-serving", model_dir],
                          capture_output=True, text=True, timeout=600)


def test_check_serving_command_passes_a_pushed_model_and_fails_the_former_export(pushed_model, former_export):
    passed, failed = run_check_serving(pushed_model), run_check_serving(former_export)

    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-3000:]
    assert " 0 failed" in passed.stdout and "FAIL" not in passed.stdout
    assert failed.returncode == 1 and "Could not find variable" in failed.stdout


def test_check_serving_names_a_folder_without_a_saved_model(tmp_path):
    result = run_check_serving(str(tmp_path))

    assert result.returncode == 2 and "has no saved_model.pb" in result.stdout
