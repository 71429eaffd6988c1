"""What TFMA and the Evaluator wrote, read back: the candidate's metrics, why the gate failed,
the baseline's metrics and the change against them, and the run's outcome (blessed, baseline,
servable, push) from the Evaluator's, InfraValidator's and Pusher's artifacts, as the RunPage
step's inputs (record.RunResult.page_inputs) name them."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import tensorflow as tf
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tensorflow_model_analysis.proto import config_pb2 as eval_config_pb2

from components.evaluator.eval_config import ACCURACY_CLASS_NAME
from components.serving import baseline as baseline_lib
from components.run_page import training as training_results
from components.run_page.record import RunResult

PASSED = "passed the gate"
EVAL_CONFIG_FILE = "eval_config.json"  # TFMA's record of the config it evaluated with


def fill_outcome(result: RunResult, serving_dir: Optional[str] = None) -> None:
    """The metrics, blessing, baseline and push of a run, from its Evaluator's, InfraValidator's
    and Pusher's artifacts: the one reading of them, for the RunPage step and the local commands
    alike. `serving_dir` is the Pusher's folder (else the folder of a version the run names),
    where the version served now is looked up."""
    evaluation = result.page_inputs.get("evaluation")
    blessing = result.page_inputs.get("blessing")
    pushed = result.page_inputs.get("pushed_model")
    infra_blessing = result.page_inputs.get("infra_blessing")
    if evaluation is not None:
        result.metrics, result.metrics_by_label = read_metrics(evaluation.uri)
    if blessing is not None:
        result.blessed = is_one(blessing.properties.get("blessed"))
        result.blessing_reason = PASSED if result.blessed else failure_reason(evaluation.uri if evaluation else None)
        result.baseline_model = blessing.properties.get("baseline_model") or None
        result.skipped_versions = skipped_versions(blessing.properties.get("skipped_versions"))
    if infra_blessing is not None:
        result.infra_blessed = is_one(infra_blessing.properties.get("blessed"))
        result.infra_reason = str(infra_blessing.properties.get("reason") or "no reason recorded")
    if pushed is not None and is_one(pushed.properties.get("pushed")):
        result.pushed_model_dir = pushed.properties.get("pushed_destination")
    serving_dir = serving_dir or known_serving_dir(result)
    if serving_dir:
        result.served_now = baseline_lib.served_version(serving_dir)
    result.trainer_device = training_results.trainer_device(result.page_inputs.get("model"))
    note_candidate_served(result)


def note_candidate_served(result: RunResult) -> None:
    """Whether the version served now is this run's candidate (pushed by it, or by the earlier
    run whose push a cached Pusher reused)."""
    pushed_path = result.pushed_model_dir or result.pushed_earlier
    result.candidate_served = bool(result.served_now and pushed_path
                                   and os.path.normpath(result.served_now) == os.path.normpath(pushed_path))


def known_serving_dir(result: RunResult) -> Optional[str]:
    """The folder of a pushed or baseline version (a compiled run records no serving_dir)."""
    known = result.pushed_model_dir or result.pushed_earlier or result.baseline_model
    return os.path.dirname(known.rstrip("/")) if known else None


def skipped_versions(value: Optional[str]) -> list[dict[str, str]]:
    """The blessing's `skipped_versions` JSON ([] when absent or unreadable)."""
    try:
        skipped = json.loads(value or "[]")
    except ValueError:
        return []
    return [{key: str(item.get(key, "")) for key in ("version", "path", "reason")}
            for item in skipped if isinstance(item, dict)] if isinstance(skipped, list) else []


def read_metrics(evaluation_uri: str) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Overall metrics and metrics per label slice of the candidate model."""
    overall: dict[str, float] = {}
    by_label: dict[str, dict[str, float]] = {}
    for record in tfma.load_metrics(evaluation_uri):
        slice_key = tfma.slicer.deserialize_slice_key(record.slice_key)
        values = {}
        for kv in record.metric_keys_and_values:
            if kv.key.is_diff or kv.key.model_name == "baseline":
                continue
            if kv.value.HasField("double_value"):
                values[kv.key.name] = kv.value.double_value.value
        if not slice_key:
            overall.update(values)
        elif len(slice_key) == 1:
            by_label[str(slice_key[0][1])] = values
    return overall, by_label


def failure_reason(evaluation_uri: Optional[str]) -> str:
    """Why the gate failed, e.g. "binary_accuracy 0.4500 is below the bar 0.7"."""
    if evaluation_uri is None:
        return "no evaluation"
    result = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for slice_result in result.metric_validations_per_slice:
        for failure in slice_result.failures:
            reasons.append(_describe_failure(failure))
    if result.missing_slices or not reasons:
        reasons.append(f"missing slices or baseline: {len(result.missing_slices)} slice(s)" if result.missing_slices
                       else "the gate failed")
    return "; ".join(reasons)


def _describe_failure(failure) -> str:
    name = failure.metric_key.name
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if failure.metric_key.is_diff:
        bound = threshold.change_threshold.absolute.value
        return f"{name} changed by {value:+.4f} against the model being served (allowed: {bound:+.4f})"
    if threshold.value_threshold.HasField("lower_bound"):
        return f"{name} {value:.4f} is below the bar {threshold.value_threshold.lower_bound.value}"
    return f"{name} {value:.4f}: {failure.message}"


def baseline_and_changes(evaluation_uri: str) -> tuple[dict[str, float], dict[str, float]]:
    """The baseline's metrics on the whole split and the candidate's change against them
    (both empty when there was no baseline)."""
    baseline: dict[str, float] = {}
    changes: dict[str, float] = {}
    for record in tfma.load_metrics(evaluation_uri):
        if tfma.slicer.deserialize_slice_key(record.slice_key):
            continue
        for kv in record.metric_keys_and_values:
            if not kv.value.HasField("double_value"):
                continue
            if kv.key.is_diff:
                changes[kv.key.name] = kv.value.double_value.value
            elif kv.key.model_name == "baseline":
                baseline[kv.key.name] = kv.value.double_value.value
    return baseline, changes


def gate_bounds(evaluation_uri: str) -> tuple[Optional[float], Optional[float]]:
    """The accuracy bar and the allowed drop against the baseline as TFMA ran the gate: from the
    eval_config.json TFMA writes beside its metrics ((None, None) where there is none)."""
    path = os.path.join(evaluation_uri, EVAL_CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        return None, None
    with tf.io.gfile.GFile(path) as f:
        return accuracy_bounds(json.dumps(json.load(f).get("evalConfig", {})))


def accuracy_bounds(eval_config_json: Optional[str]) -> tuple[Optional[float], Optional[float]]:
    """(bar, allowed drop) of the accuracy gate in an EvalConfig's JSON (TFMA's own file, or the
    Evaluator's `eval_config` property); TFMA's change bound is -(drop + 1e-9), as it is
    exclusive (components/evaluator/eval_config.py)."""
    if not eval_config_json:
        return None, None
    config = json_format.Parse(eval_config_json, eval_config_pb2.EvalConfig(), ignore_unknown_fields=True)
    bar = drop = None
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name != ACCURACY_CLASS_NAME:
                continue
            for per_slice in metric.per_slice_thresholds:
                threshold = per_slice.threshold
                if threshold.value_threshold.HasField("lower_bound"):
                    bar = threshold.value_threshold.lower_bound.value
                if threshold.change_threshold.HasField("absolute"):
                    drop = round(-threshold.change_threshold.absolute.value - 1e-9, 6)
    return bar, drop


def max_accuracy_drop(eval_config_json: Optional[str]) -> Optional[float]:
    return accuracy_bounds(eval_config_json)[1]


def is_one(value: Any) -> bool:
    """An int property set to 1 (KFP's metadata may carry it as a float or a string)."""
    try:
        return value is not None and float(value) == 1
    except (TypeError, ValueError):
        return False
