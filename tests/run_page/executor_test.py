"""The RunPage executor on tiny data, through `Executor().Do(...)`: TFMA's output files written
here for a candidate scored by a stand-in model (support/score_model.py's logits, 7 of 10 test
examples right), the blessings and the push as their executors leave them, and the four outputs
at URIs laid out as a Kubeflow task's (one task folder, each output named by its key)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_model_analysis.proto import metrics_for_slice_pb2, validation_result_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import features
from components.evaluator.eval_config import ACCURACY_METRIC, build_eval_config
from components.example_gen.examples import serialized_example
from components.run_page import artifacts, executor, page_data, spec
from support import sample_images
from support.score_model import KNOWN_ACCURACY, LABELS, LOGITS

SCORE_FEATURE = "score"
ACCURACY_BAR = 0.75  # above the candidate's 0.7: not blessed
FILE_OUTPUTS = (spec.PAGE_KEY, spec.VERDICT_KEY)


class FlatScoreModel(tf.Module):
    """The examples signature as the Trainer exports it (a probability per example, shape
    [batch]), reading its logit from the example (times `sign`)."""

    def __init__(self, sign: float = 1.0):
        super().__init__()
        self.sign = sign

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.EXAMPLES_INPUT_KEY)])
    def from_examples(self, examples):
        logit = self.sign * tf.io.parse_example(
            examples, {SCORE_FEATURE: tf.io.FixedLenFeature([], tf.float32)})[SCORE_FEATURE]
        return {features.PROBABILITY_KEY: tf.sigmoid(logit), features.LOGIT_KEY: logit}


def truth_table():
    """(true label, predicted label) counts of the stand-in model, from its logits."""
    counts = np.zeros((2, 2), int)
    for logit, label in zip(LOGITS, LABELS):
        counts[label, int(logit > 0)] += 1
    return counts


def ranking_auc():
    """The share of (dog, cat) pairs the logits rank right (no ties among them)."""
    dogs, cats = LOGITS[LABELS == 1], LOGITS[LABELS == 0]
    return float(np.mean([dog > cat for dog in dogs for cat in cats]))


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """ExampleGen's output as the page reads it: the test split (a JPEG, the label, the file
    name and the stand-in's logit per example) and the label names and split sizes."""
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path_factory.mktemp("examples"))
    artifact.split_names = '["test"]'
    artifact.set_string_custom_property("label_names", json.dumps(features.LABEL_NAMES))
    artifact.set_string_custom_property("split_sizes", json.dumps({"test": len(LABELS)}))
    os.makedirs(os.path.join(artifact.uri, "Split-test"))
    with tf.io.TFRecordWriter(os.path.join(artifact.uri, "Split-test", "data_tfrecord-00000-of-00001")) as writer:
        for index, (logit, label) in enumerate(zip(LOGITS, LABELS)):
            example = tf.train.Example.FromString(
                serialized_example(sample_images.jpeg(index, (40, 30)), int(label), f"test/{index}.jpg".encode()))
            example.features.feature[SCORE_FEATURE].float_list.value.append(float(logit))
            writer.write(example.SerializeToString())
    return artifact


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    artifact = standard_artifacts.Model()
    artifact.uri = str(tmp_path_factory.mktemp("model"))
    module = FlatScoreModel()
    tf.saved_model.save(module, path_utils.serving_model_dir(artifact.uri),
                        signatures={features.EXAMPLES_SIGNATURE: module.from_examples})
    return artifact


def metrics_record(values, label=None):
    """One MetricsForSlice as TFMA writes it: the whole split, or the slice label=`label`."""
    record = metrics_for_slice_pb2.MetricsForSlice()
    if label is not None:
        record.slice_key.single_slice_keys.add(column=features.LABEL_KEY, int64_value=label)
    for name, value in values.items():
        entry = record.metric_keys_and_values.add()
        entry.key.name = name
        entry.value.double_value.value = value
    return record


def evaluation(tmp_path, accuracy_bar=ACCURACY_BAR):
    """The Evaluator's output as TFMA writes it: its metrics (whole split and per label), its
    validation result (the accuracy gate), and the eval config it ran."""
    artifact = standard_artifacts.ModelEvaluation()
    artifact.uri = str(tmp_path / "evaluation")
    os.makedirs(artifact.uri)
    table = truth_table()
    per_label = {label: {ACCURACY_METRIC: table[label, label] / table[label].sum(),
                         "example_count": float(table[label].sum())} for label in (0, 1)}
    overall = {ACCURACY_METRIC: KNOWN_ACCURACY, "auc": ranking_auc(), "precision": table[1, 1] / table[:, 1].sum(),
               "recall": table[1, 1] / table[1].sum(), "example_count": float(len(LABELS))}
    with tf.io.TFRecordWriter(os.path.join(artifact.uri, "metrics-00000-of-00001.tfrecord")) as writer:
        writer.write(metrics_record(overall).SerializeToString())
        for label, values in per_label.items():
            writer.write(metrics_record(values, label).SerializeToString())
    validation = validation_result_pb2.ValidationResult(validation_ok=KNOWN_ACCURACY >= accuracy_bar)
    if not validation.validation_ok:
        failure = validation.metric_validations_per_slice.add().failures.add()
        failure.metric_key.name = ACCURACY_METRIC
        failure.metric_value.double_value.value = KNOWN_ACCURACY
        failure.metric_threshold.value_threshold.lower_bound.value = accuracy_bar
    with tf.io.TFRecordWriter(os.path.join(artifact.uri, "validations.tfrecord")) as writer:
        writer.write(validation.SerializeToString())
    with open(os.path.join(artifact.uri, "eval_config.json"), "w") as f:
        json.dump({"evalConfig": json_format.MessageToDict(build_eval_config(accuracy_bar))}, f)
    return artifact, overall, per_label


def verdict_artifact(kind, tmp_path, name, blessed, **properties):
    artifact = kind()
    artifact.uri = str(tmp_path / name)
    os.makedirs(artifact.uri)
    artifact.set_int_custom_property("blessed", int(blessed))
    for key, value in properties.items():
        artifact.set_string_custom_property(key, value)
    return artifact


def outputs(task_folder):
    """The four outputs at URIs as the Kubeflow driver lays them out: one task folder, each
    output named by its key."""
    kinds = {spec.PAGE_KEY: artifacts.HTML, spec.METRICS_KEY: artifacts.Metrics,
             spec.CLASSIFICATION_METRICS_KEY: artifacts.ClassificationMetrics, spec.VERDICT_KEY: artifacts.Markdown}
    made = {}
    for key, kind in kinds.items():
        made[key] = kind()
        made[key].uri = os.path.join(task_folder, key)
    return made


def run_page(tmp_path, examples, model, with_evaluation=True, blessed=False, task_folder=None, pushed_to=None,
             hand=lambda artifact: artifact):
    """Runs the executor on inputs made under `tmp_path` and handed to it through `hand`, its
    outputs in `task_folder` (else tmp_path/task); returns its outputs and the overall and
    per-label metrics written."""
    os.makedirs(tmp_path, exist_ok=True)
    evaluated, overall, per_label = evaluation(tmp_path) if with_evaluation else (None, {}, {})
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed_model")
    pushed.set_int_custom_property("pushed", int(pushed_to is not None))
    if pushed_to is not None:
        pushed.set_string_custom_property("pushed_destination", pushed_to)
    inputs = {
        spec.EXAMPLES_KEY: [examples], spec.MODEL_KEY: [model],
        spec.EVALUATION_KEY: [evaluated] if evaluated else [],
        spec.BLESSING_KEY: [verdict_artifact(standard_artifacts.ModelBlessing, tmp_path, "blessing", blessed)],
        spec.INFRA_BLESSING_KEY: [verdict_artifact(standard_artifacts.InfraBlessing, tmp_path, "infra_blessing", True,
                                                   reason="loaded and answered 4 requests")],
        spec.PUSHED_MODEL_KEY: [pushed],
    }
    inputs = {key: [hand(artifact) for artifact in artifacts] for key, artifacts in inputs.items()}
    made = outputs(task_folder or tmp_path / "task")
    executor.Executor().Do(inputs, {key: [artifact] for key, artifact in made.items()}, {
        spec.PIPELINE_NAME_KEY: "cats-vs-dogs-test", spec.PROFILE_KEY: "demo", spec.CONFIG_CHANGES_KEY: "{}",
        spec.SERVING_DIR_KEY: str(tmp_path / "serving")})
    return made, overall, per_label


def as_kubeflow_hands_it(artifact):
    """The artifact as TFX's Kubeflow entrypoint rebuilds it from a task's executor input: as
    its producer's executor output wrote it (custom properties as metadata, numbers as floats),
    typed as TFX's compiler types it (`kubeflow_v2_entrypoint_utils`)."""
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint_utils

    runtime = entrypoint_utils.to_runtime_artifact(artifact, {})
    schema = compiler_utils.get_artifact_schema(type(artifact))
    runtime.type.instance_schema = schema.decode() if isinstance(schema, bytes) else schema
    [rebuilt] = entrypoint_utils.parse_raw_artifact_dict({"x": pipeline_spec_pb2.ArtifactList(artifacts=[runtime])})["x"]
    return rebuilt


def read(artifact):
    with open(artifact.uri) as f:
        return f.read()


def float_properties(artifact):
    return {key: value.double_value for key, value in artifact.mlmd_artifact.custom_properties.items()
            if value.WhichOneof("value") == "double_value"}


def test_a_run_that_is_not_blessed_still_gets_its_page_and_a_verdict_with_the_reason(tmp_path, examples, model):
    made, _, _ = run_page(tmp_path, examples, model)
    reason = f"{ACCURACY_METRIC} {KNOWN_ACCURACY:.4f} is below the bar {ACCURACY_BAR}"
    verdict = read(made[spec.VERDICT_KEY])
    assert verdict.startswith("# Not blessed\n") and reason in verdict
    assert "Serving check: servable (loaded and answered 4 requests)" in verdict
    page = read(made[spec.PAGE_KEY])
    assert page.startswith("<!DOCTYPE html>") and "Not blessed" in page and reason in page
    for key, artifact in made.items():
        assert artifact.get_string_custom_property(executor.DISPLAY_NAME), key


def test_metrics_are_the_evaluations_as_float_custom_properties(tmp_path, examples, model):
    made, overall, per_label = run_page(tmp_path, examples, model)
    expected = {**overall, **{f"{ACCURACY_METRIC} ({features.LABEL_NAMES[label]})": values[ACCURACY_METRIC]
                              for label, values in per_label.items()}, "accuracy_bar": ACCURACY_BAR}
    assert float_properties(made[spec.METRICS_KEY]) == pytest.approx(expected)
    assert set(made[spec.METRICS_KEY].mlmd_artifact.custom_properties) == {*expected, executor.DISPLAY_NAME}


def test_confusion_matrix_and_roc_are_the_models_on_the_test_split(tmp_path, examples, model):
    made, _, _ = run_page(tmp_path, examples, model)
    classification = made[spec.CLASSIFICATION_METRICS_KEY]
    matrix = classification.get_json_value_custom_property("confusionMatrix")
    assert [spec_["displayName"] for spec_ in matrix["annotationSpecs"]] == list(features.LABEL_NAMES)
    assert [row["row"] for row in matrix["rows"]] == truth_table().tolist()
    roc = classification.get_json_value_custom_property("confidenceMetrics")
    thresholds = [point["confidenceThreshold"] for point in roc]
    recall = [point["recall"] for point in roc]
    fpr = [point["falsePositiveRate"] for point in roc]
    # One point above every probability, then one per (distinct) example's probability.
    assert len(roc) == len(LOGITS) + 1 and thresholds == sorted(thresholds, reverse=True)
    assert thresholds[1:] == pytest.approx(sorted(1 / (1 + np.exp(-LOGITS)), reverse=True), abs=1e-6)
    assert (fpr[0], recall[0]) == (0, 0) and (fpr[-1], recall[-1]) == (1, 1)
    assert np.trapezoid(recall, fpr) == pytest.approx(ranking_auc())


def test_without_an_evaluation_the_metrics_are_empty_and_the_page_is_still_written(tmp_path, examples, model):
    made, _, _ = run_page(tmp_path, examples, model, with_evaluation=False)
    assert float_properties(made[spec.METRICS_KEY]) == {}
    assert set(made[spec.METRICS_KEY].mlmd_artifact.custom_properties) == {executor.DISPLAY_NAME}
    assert "confusionMatrix" not in made[spec.CLASSIFICATION_METRICS_KEY].mlmd_artifact.custom_properties
    assert read(made[spec.PAGE_KEY]).startswith("<!DOCTYPE html>")
    verdict = read(made[spec.VERDICT_KEY])
    assert verdict.startswith("# Not blessed\n") and "no evaluation" in verdict


def test_the_page_and_verdict_are_replaced_whole_and_no_temporary_file_is_left(tmp_path, examples, model,
                                                                                monkeypatch):
    task_folder = tmp_path / "task"
    made, _, _ = run_page(tmp_path / "first", examples, model, blessed=True, task_folder=task_folder)
    assert sorted(os.listdir(task_folder)) == sorted(FILE_OUTPUTS)
    assert read(made[spec.VERDICT_KEY]).startswith("# Blessed\n")
    first = {key: read(made[key]) for key in FILE_OUTPUTS}

    # A run whose files cannot take the former ones' place leaves those whole, and nothing besides.
    def failing_rename(source, target, overwrite=False):
        raise OSError(f"no room for {target}")

    with monkeypatch.context() as patch:
        patch.setattr(tf.io.gfile, "rename", failing_rename)
        with pytest.raises(OSError, match="no room for"):
            run_page(tmp_path / "failed", examples, model, task_folder=task_folder)
    assert {key: read(made[key]) for key in FILE_OUTPUTS} == first
    assert sorted(os.listdir(task_folder)) == sorted(FILE_OUTPUTS)

    made, _, _ = run_page(tmp_path / "again", examples, model, task_folder=task_folder)
    assert sorted(os.listdir(task_folder)) == sorted(FILE_OUTPUTS)
    assert read(made[spec.VERDICT_KEY]).startswith("# Not blessed\n")
    assert read(made[spec.PAGE_KEY]) != first[spec.PAGE_KEY]


def test_inputs_as_a_kubeflow_runner_hands_them_read_as_the_local_runners(tmp_path, examples, model):
    """TFX's Kubeflow entrypoint rebuilds every custom property of an input as a JSON value (the
    blessing's `blessed`, the push's destination, the examples' label names); the run reads the
    same as when the local runner hands ML Metadata's values."""
    pushed_to = "/srv/models/cats_vs_dogs/1700000000"
    local, _, _ = run_page(tmp_path / "local", examples, model, blessed=True, pushed_to=pushed_to)
    kubeflow, _, _ = run_page(tmp_path / "kubeflow", examples, model, blessed=True, pushed_to=pushed_to,
                              hand=as_kubeflow_hands_it)
    verdict = read(kubeflow[spec.VERDICT_KEY])
    assert verdict.startswith("# Blessed\n") and "Pushed: version 1700000000" in verdict
    assert verdict == read(local[spec.VERDICT_KEY])
    for key in (spec.METRICS_KEY, spec.CLASSIFICATION_METRICS_KEY):
        assert kubeflow[key].mlmd_artifact.custom_properties == local[key].mlmd_artifact.custom_properties


def test_a_metric_that_is_not_a_number_is_left_out_of_the_metrics_output():
    """TFMA's precision is NaN when the model predicts nothing positive (an untrained head):
    ML Metadata refuses to store a NaN, and KFP's metadata is JSON, which has none."""
    from components.run_page import kfp_outputs
    from components.run_page.page_data import PageData
    from components.run_page.record import RunResult

    result = RunResult(pipeline_name="p", run_id="r", profile="demo", components=[],
                       metrics={"binary_accuracy": 0.5, "precision": float("nan"), "recall": 0.0,
                                "auc": float("inf")})
    assert kfp_outputs.metrics(PageData(result=result)) == {"binary_accuracy": 0.5, "recall": 0.0}


def test_a_models_test_predictions_are_computed_once_and_again_when_its_folder_is_rewritten(tmp_path, examples):
    """The page written after a local run reuses what its RunPage step computed in the same
    process; a model written anew in the same folder is run again."""
    model_dir = str(tmp_path / "serving_model")
    test_files = page_data.split_files(examples.uri, "test")

    def probabilities(module=None):
        if module is not None:
            tf.saved_model.save(module, model_dir, signatures={features.EXAMPLES_SIGNATURE: module.from_examples})
        data = page_data.PageData(result=None)
        page_data.read_predictions(data, model_dir, test_files)
        return np.array(data.test_probabilities)

    first = probabilities(FlatScoreModel())
    computed = page_data.test_predictions.cache_info().misses
    np.testing.assert_allclose(first, tf.sigmoid(LOGITS.astype("float32")).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(probabilities(), first)
    assert page_data.test_predictions.cache_info().misses == computed

    np.testing.assert_allclose(probabilities(FlatScoreModel(sign=-1.0)), 1.0 - first, rtol=1e-5)
    assert page_data.test_predictions.cache_info().misses == computed + 1
