"""The InfraValidator on tiny data: a model TF Serving's loader serves is blessed, the former
tf.Module export (Python loads it, the C++ loader cannot) is not, and so is nothing that misses
the time limit; the Pusher pushes only with both blessings."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from components import features
from components.example_gen.examples import serialized_example
from components.infra_validator import executor as validator_executor
from components.infra_validator import spec
from components.serving import requests
from support import sample_images

CANARY_SIZE = 4
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """An Examples artifact whose test split holds a few mixed-format images (gzipped, as the
    ExampleGen can write them)."""
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path_factory.mktemp("examples"))
    artifact.split_names = '["test"]'
    split_dir = os.path.join(artifact.uri, "Split-test")
    os.makedirs(split_dir)
    with tf.io.TFRecordWriter(os.path.join(split_dir, "data.gz"), options="GZIP") as writer:
        for index, image in enumerate(sample_images.mixed_images()):
            writer.write(serialized_example(image, index % 2, f"{index}.img".encode()))
    return artifact


def model_artifact(tmp_path, export_dir):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    shutil.copytree(export_dir, os.path.join(model.uri, "Format-Serving"))
    return model


def validate(tmp_path, export_dir, examples, timeout_seconds=300):
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    validator_executor.Executor().Do(
        {spec.MODEL_KEY: [model_artifact(tmp_path, export_dir)], spec.EXAMPLES_KEY: [examples]},
        {spec.BLESSING_KEY: [blessing]},
        {spec.TIMEOUT_SECONDS_KEY: timeout_seconds, spec.CANARY_SPLIT_KEY: "test", spec.CANARY_SIZE_KEY: CANARY_SIZE},
    )
    with open(os.path.join(blessing.uri, validator_executor.DETAILS_FILE)) as f:
        return blessing, json.load(f)


def test_a_model_tf_serving_serves_is_blessed_after_its_warmup_and_a_canary_per_signature(tmp_path, pushed_model,
                                                                                          examples):
    blessing, details = validate(tmp_path, pushed_model, examples)

    assert blessing.get_int_custom_property("blessed") == 1
    assert os.path.exists(os.path.join(blessing.uri, "INFRA_BLESSED"))
    names = [check["name"] for check in details["checks"]]
    assert names == ["warm-up request 1 (1 images)", "warm-up request 2 (8 images)",
                     f"canary: {CANARY_SIZE} examples to {features.EXAMPLES_SIGNATURE}",
                     f"canary: {CANARY_SIZE} examples to {features.SERVING_SIGNATURE}",
                     f"canary: {CANARY_SIZE} examples to {features.TRANSFORM_FEATURES_SIGNATURE}"]
    assert all(check["passed"] for check in details["checks"])
    reason = blessing.get_string_custom_property("reason")
    assert "2 warm-up requests and 3 canary batches of 4 answered" in reason
    assert details["blessed"] and blessing.get_float_custom_property("seconds") > 0


def test_the_former_tf_module_export_is_not_blessed_with_the_loaders_reason(tmp_path, former_export, examples):
    assert tf.saved_model.load(former_export).signatures[features.SERVING_SIGNATURE] is not None  # Python loads it

    blessing, details = validate(tmp_path, former_export, examples)

    assert blessing.get_int_custom_property("blessed") == 0
    assert os.path.exists(os.path.join(blessing.uri, "INFRA_NOT_BLESSED"))
    reason = blessing.get_string_custom_property("reason")
    assert reason.startswith("warm-up request 1 (1 images) (serving_default) failed in TF Serving's loader")
    assert "Could not find variable" in reason
    # Each loader process stops at its first failure: the warm-up's, and the other signatures' first canary.
    assert [(check["name"], check["passed"]) for check in details["checks"]] == [
        ("warm-up request 1 (1 images)", False), (f"canary: {CANARY_SIZE} examples to {features.EXAMPLES_SIGNATURE}", False)]


def test_a_model_that_misses_the_time_limit_is_not_blessed(tmp_path, pushed_model, examples):
    blessing, _ = validate(tmp_path, pushed_model, examples, timeout_seconds=0.01)

    assert blessing.get_int_custom_property("blessed") == 0
    assert "not answered within 0.01 s" in blessing.get_string_custom_property("reason")
    assert "infra_validator.timeout_seconds" in blessing.get_string_custom_property("reason")


def test_a_folder_without_a_saved_model_is_not_blessed(tmp_path, examples):
    empty = tmp_path / "empty"
    empty.mkdir()

    blessing, _ = validate(tmp_path, str(empty), examples)

    assert blessing.get_int_custom_property("blessed") == 0
    assert "saved_model.pb" in blessing.get_string_custom_property("reason")


def test_an_empty_canary_split_stops_the_step_naming_the_split(tmp_path, pushed_model):
    empty = standard_artifacts.Examples()
    empty.uri = str(tmp_path / "examples")
    empty.split_names = '["test"]'
    os.makedirs(os.path.join(empty.uri, "Split-test"))

    with pytest.raises(ValueError, match="no canary batch from the 'test' split"):
        validate(tmp_path, pushed_model, empty)


def test_a_signature_input_no_canary_fills_is_named():
    with pytest.raises(requests.CanaryError, match="signature 'custom' takes input 'pixels'"):
        requests.canary_calls({"custom": ["pixels"]}, [serialized_example(sample_images.jpeg(), 0, b"a.jpg")])


def test_warmup_signatures_share_one_loader_and_the_other_signatures_another():
    warm = requests.Call(f"{requests.WARMUP_PREFIX} 1 (1 images)", "serving_default", {"image_bytes": [b"x"]})
    canaries = [requests.Call(f"canary to {name}", name, {}) for name in ("from_examples", "serving_default", "t")]

    groups = validator_executor.loader_groups([warm, *canaries])

    assert [[call.name for call in group] for group in groups] == [
        [warm.name, "canary to serving_default"], ["canary to from_examples", "canary to t"]]
    assert validator_executor.loader_groups([warm]) == [[warm]]


def test_outputs_must_have_a_row_per_input_and_finite_numbers():
    assert validator_executor.output_problem({"p": np.zeros([2], np.float32)}, 2) is None
    assert "shape (3,)" in validator_executor.output_problem({"p": np.zeros([3], np.float32)}, 2)
    assert "not finite" in validator_executor.output_problem({"p": np.array([0.5, np.nan], np.float32)}, 2)


def test_building_the_c_loader_as_make_setup_does_prints_nothing_on_stderr():
    """tools/setup and the Dockerfile run `python -m components.serving.c_loader`: no
    RuntimeWarning that the package imported c_loader before running it, and no TensorFlow
    start-up lines (the build needs no TensorFlow loaded)."""
    result = subprocess.run([sys.executable, "-m", "components.serving.c_loader"], capture_output=True,
                            text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(result.stdout.strip())
    assert result.stderr == ""
