"""End to end on the generated sample: the demo profile through the CLI, four runs in one root
(the session's `demo_runs`, tests/conftest.py).

1. first run (with an accuracy bar of 0.6, a setting the run page shows): blessed (no
   baseline yet) and pushed;
2. a retrained model: ExampleGen and Transform come from the cache, the Evaluator compares
   against the first model as baseline;
3. a gate the model does not meet (an accuracy bar of 1.0): exit 3, nothing pushed;
4. a model worse than the one being served (an untrained head) with no accuracy bar: the
   Evaluator's baseline, the newest served version, stops it: exit 3, nothing pushed.
"""

import glob
import html
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from components import features
from components.serving import tfrecords
from components.trainer import devices
from pipeline.cli import console as console_lib
from pipeline.results import metadata as report
from pipeline.cli import exit_status
from pipeline.config.settings import load_profile
from support.records import first_push_summary_problems

pytestmark = pytest.mark.e2e

DEMO = load_profile("demo")


def serving_versions(root):
    base = os.path.join(root, "serving", DEMO.model_name)
    return sorted(name for name in os.listdir(base)) if os.path.isdir(base) else []


def test_first_run_is_blessed_and_pushes_one_version(demo_runs):
    root, [(result, summary), *_] = demo_runs
    assert summary["blessed"] is True and summary["profile"] == "demo"
    assert summary["metrics"]["binary_accuracy"] >= DEMO.evaluator.accuracy_bar
    assert 0.0 <= summary["metrics"]["auc"] <= 1.0
    assert summary["pushed_model_dir"] == os.path.join(root, "serving", DEMO.model_name, serving_versions(root)[0])
    assert all(info["status"] == "complete" for info in summary["components"].values()), summary["components"]
    assert summary["run_page"] == os.path.join(root, "pipeline", "reports", summary["run_id"].replace(":", "-"),
                                             "report.html") and os.path.isfile(summary["run_page"])
    # Progress and summary on the console.
    assert "[pipeline] Trainer started" in result.stdout and "[pipeline] Trainer finished in" in result.stdout
    assert "Blessed: yes" in result.stdout
    # The InfraValidator ran the candidate in TF Serving's loader before the Pusher pushed it.
    assert summary["infra_blessed"] is True
    assert "Serving check: passed (loaded in TF Serving's loader" in result.stdout
    assert first_push_summary_problems(summary) == []  # as tests/compiled_run_test.py's compiled run


# Warnings printed on every run that a user cannot act on (issue 14): Keras's, on a layer
# without get_config, on an epoch of unknown length and on fit's shuffle of a dataset; TFX's
# readers' on examples without a payload format; TFMA's use of TF's deprecated reader;
# TensorFlow's native start-up lines; TFDS's on a fresh data dir.
CONSOLE_NOISE = (
    "Model failed to serialize as JSON",
    "Your input ran out of data",
    "`shuffle=True` was passed, but will be ignored",
    "does not have payload_format custom property",
    "tf_record_iterator",
    "All log messages before absl::InitializeLog() is called",
    "Could not find cuda drivers",
    "has no dataset_info.json",
)


def test_console_shows_progress_and_epochs_and_no_warning_a_user_cannot_act_on(demo_runs):
    _, [(result, _), *_] = demo_runs
    console = result.stdout + result.stderr
    for component in ("TfdsExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert f"[pipeline] {component} finished in" in console
    total_epochs = DEMO.trainer.phase1_epochs + DEMO.trainer.phase2_epochs
    assert f"Epoch 1/{DEMO.trainer.phase1_epochs}" in console and f"Epoch {total_epochs}/{total_epochs}" in console
    noise = CONSOLE_NOISE if os.path.exists(console_lib.NVIDIA_DRIVER_DEVICE) else (*CONSOLE_NOISE, "failed call to cuInit")
    assert [line for line in console.splitlines() if any(text in line for text in noise)] == []


def test_pushed_model_classifies_the_test_split_through_serving_default(demo_runs):
    root, [(_, summary), *_] = demo_runs
    images, labels = read_split(root, "test")
    serve = tf.saved_model.load(summary["pushed_model_dir"]).signatures["serving_default"]
    predicted = []
    for start in range(0, len(images), 32):
        outputs = serve(image_bytes=tf.constant(images[start:start + 32]))
        predicted.extend(outputs[features.PREDICTED_LABEL_KEY].numpy().reshape(-1))
    truth = [features.LABEL_NAMES[label].encode() for label in labels]
    accuracy = np.mean(np.array(predicted) == np.array(truth))
    assert accuracy >= DEMO.evaluator.accuracy_bar


def test_pushed_model_passes_every_check_in_tensorflows_cpp_loader(demo_runs):
    """`python -m pipeline check-serving`: every signature and warm-up request through the C++
    loader TF Serving uses (TF_LoadSessionFromSavedModel in a process without Python)."""
    _, [(_, summary), *_] = demo_runs
    result = subprocess.run([sys.executable, "-m", "pipeline", "check-serving", summary["pushed_model_dir"]],
                            capture_output=True, text=True, timeout=600)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    for check in ("serving_default: a batch of 32 JPEGs", "from_examples: tf.Examples",
                  "transform_features: tf.Examples", "serving_default: warm-up request 1",
                  "serving_default: warm-up request 2"):
        assert f"ok   {check}" in result.stdout
    assert " 0 failed" in result.stdout


def test_second_run_reuses_data_and_compares_against_the_first_model(demo_runs):
    root, [(_, first), (_, second), *_] = demo_runs
    components = second["components"]
    assert components["TfdsExampleGen"]["status"] == "cached"
    assert components["Transform"]["status"] == "cached"
    assert components["Trainer"]["status"] == "complete"
    assert second["blessed"] and second["pushed_model_dir"] != first["pushed_model_dir"]
    assert first["baseline_model"] is None and second["baseline_model"] == first["pushed_model_dir"]
    store = report.open_store(os.path.join(root, "pipeline", "metadata", "metadata.sqlite"))
    [evaluation] = evaluator_outputs(store, second_run_id(store), "ModelEvaluation")
    _, diffs = read_candidate_and_diffs(evaluation.uri)
    assert "binary_accuracy" in diffs  # the candidate was compared against a baseline


def test_gate_the_model_does_not_meet_exits_3_and_pushes_nothing(demo_runs):
    """The second run's model (cached), against a bar of 1.0: it classifies some test images wrong."""
    root, [_, (_, second), (result, third), _] = demo_runs
    assert second["metrics"]["binary_accuracy"] < 1.0
    assert result.returncode == exit_status.NOT_BLESSED, result.stderr[-3000:]
    assert third["blessed"] is False and third["pushed_model_dir"] is None
    assert "binary_accuracy" in third["blessing_reason"]
    assert len(serving_versions(root)) == 2  # the first two runs' versions only
    assert not [name for name in os.listdir(os.path.join(root, "serving", DEMO.model_name)) if not name.isdigit()]


def test_a_model_worse_than_the_served_one_is_not_blessed_and_pushes_nothing(demo_runs):
    root, [*_, (result, worse)] = demo_runs
    assert result.returncode == exit_status.NOT_BLESSED, result.stdout[-3000:] + result.stderr[-3000:]
    assert worse["blessed"] is False and worse["pushed_model_dir"] is None
    assert worse["metrics"]["binary_accuracy"] >= 0  # the bar (0) passed: the baseline decided
    assert "binary_accuracy" in worse["blessing_reason"]
    assert len(serving_versions(root)) == 2


def test_metadata_holds_one_execution_per_component_per_run(demo_runs):
    root, _ = demo_runs
    store = report.open_store(os.path.join(root, "pipeline", "metadata", "metadata.sqlite"))
    run_ids = [c.name for c in store.get_contexts_by_type("pipeline_run")]
    assert len(run_ids) == 4
    for run_id in run_ids:
        executions = report.run_executions(store, run_id)
        assert {len(found) for found in executions.values()} == {1}, (run_id, executions.keys())
        assert {"TfdsExampleGen", "Transform", "Trainer", "Evaluator", "InfraValidator", "Pusher"} <= set(executions)


def read_split(root, split):
    pattern = os.path.join(root, "pipeline", "TfdsExampleGen", "examples", "*", f"Split-{split}", "*")
    dataset = tfrecords.dataset(sorted(glob.glob(pattern)))
    images, labels = [], []
    for record in dataset:
        example = tf.train.Example.FromString(record.numpy())
        images.append(example.features.feature[features.IMAGE_KEY].bytes_list.value[0])
        labels.append(example.features.feature[features.LABEL_KEY].int64_list.value[0])
    assert images, f"no examples found at {pattern}"
    return images, labels


def second_run_id(store):
    runs = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: (c.create_time_since_epoch, c.id))
    return runs[1].name


def evaluator_outputs(store, run_id, type_name):
    executions = report.run_executions(store, run_id)["Evaluator"]
    return report.artifacts_of_type(store, executions, type_name)


def read_candidate_and_diffs(evaluation_uri):
    import tensorflow_model_analysis as tfma

    candidate, diffs = {}, {}
    for record in tfma.load_metrics(evaluation_uri):
        if record.slice_key.single_slice_keys:
            continue
        for kv in record.metric_keys_and_values:
            (diffs if kv.key.is_diff else candidate)[kv.key.name] = kv.value.double_value.value
    return candidate, diffs


def test_the_summary_and_the_run_page_name_the_device_the_trainer_used(demo_runs):
    _, [(result, summary), *_] = demo_runs
    expected = devices.choose(DEMO.trainer).describe()  # on this machine "CPU (N cores; TensorFlow sees no GPU)"

    assert summary["trainer_device"] == expected
    assert f"Trainer device: {expected}" in result.stdout.splitlines()
    with open(summary["run_page"]) as page:
        assert f"Trained on {html.escape(expected)}." in page.read()
