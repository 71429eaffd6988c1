"""What TFMA and the Evaluator wrote, read back: the candidate's metrics, why the gate failed,
the baseline's metrics and the change against them, and the run's outcome (blessed, baseline,
servable, push) from the Evaluator's, InfraValidator's and Pusher's artifacts."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import tensorflow_model_analysis as tfma

from components.serving import baseline as baseline_lib
from pipeline import steps
from pipeline.results import training as training_results
from pipeline.results.record import RunResult

PASSED = "passed the gate"


def fill_outcome(result: RunResult) -> None:
    """The metrics, blessing, baseline and push of a run, from its Evaluator's and Pusher's
    artifacts: the one reading of them, for local and compiled runs alike."""
    evaluation = result.output(steps.EVALUATOR.id, "evaluation")
    blessing = result.output(steps.EVALUATOR.id, "blessing")
    pushed = result.output(steps.PUSHER.id, "pushed_model")
    infra_blessing = result.output(steps.INFRA_VALIDATOR.id, "blessing")
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
    result.evaluated_in_run = result.cached_from.get(steps.EVALUATOR.id) if is_cached(result, steps.EVALUATOR.id) else None
    if pushed is not None and is_one(pushed.properties.get("pushed")):
        destination = pushed.properties.get("pushed_destination")
        if is_cached(result, steps.PUSHER.id):  # the push was an earlier run's: this run pushed nothing
            result.pushed_earlier = destination
            result.pushed_in_run = result.cached_from.get(steps.PUSHER.id)
        else:
            result.pushed_model_dir = destination
    serving_dir = serving_dir_of(result)
    if serving_dir:
        result.served_now = baseline_lib.served_version(serving_dir)
    result.trainer_device = training_results.trainer_device(result.output(steps.TRAINER.id, "model"))
    pushed_path = result.pushed_model_dir or result.pushed_earlier
    result.candidate_served = bool(result.served_now and pushed_path
                                   and os.path.normpath(result.served_now) == os.path.normpath(pushed_path))


def is_cached(result: RunResult, name: str) -> bool:
    component = result.component(name)
    return component is not None and component.status == "cached"


def serving_dir_of(result: RunResult) -> Optional[str]:
    """The Pusher's folder: the Evaluator's `serving_dir`, else the folder of a pushed or
    baseline version (a compiled run records no serving_dir)."""
    recorded = result.execution_properties.get(steps.EVALUATOR.id, {}).get("serving_dir")
    if recorded:
        return recorded
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


def max_accuracy_drop(eval_config_json: Optional[str]) -> Optional[float]:
    """The drop against the baseline the gate allows, from the Evaluator's eval_config (whose
    bound is -(drop + 1e-9): TFMA's change threshold is exclusive)."""
    if not eval_config_json:
        return None
    for spec in json.loads(eval_config_json).get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            for per_slice in metric.get("per_slice_thresholds", []):
                absolute = per_slice.get("threshold", {}).get("change_threshold", {}).get("absolute")
                if absolute is not None:
                    return round(-float(absolute) - 1e-9, 6)
    return None


def is_one(value: Any) -> bool:
    """An int property set to 1 (KFP's metadata may carry it as a float or a string)."""
    try:
        return value is not None and float(value) == 1
    except (TypeError, ValueError):
        return False
