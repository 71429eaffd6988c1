"""What a run did, read back from ML Metadata: per-component status, metrics, blessing, push."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

import tensorflow_model_analysis as tfma
from ml_metadata import errors, metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.evaluator.eval_config import ACCURACY_METRIC

_STATES = {
    metadata_store_pb2.Execution.COMPLETE: "complete",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.NEW: "new",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}
# Metric names in the summary, by TFMA metric key name.
_SUMMARY_METRICS = ("binary_accuracy", "auc", "precision", "recall", "binary_crossentropy", "example_count")


@dataclasses.dataclass
class RunReport:
    profile: str
    run_id: Optional[str]
    components: dict[str, dict[str, Any]]
    metrics: dict[str, float]
    metrics_by_label: dict[str, dict[str, float]]
    blessed: bool
    blessing_reason: str
    pushed_model_dir: Optional[str]
    # The model the candidate was compared with: the version being served when the run began.
    baseline_model: Optional[str] = None
    wall_seconds: float = 0.0
    # The run's HTML page (pipeline/run_page.py).
    report: Optional[str] = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def render(self) -> str:
        lines = [f"Pipeline run {self.run_id} ({self.profile} profile), {self.wall_seconds:.1f} s", "Components:"]
        for name, info in self.components.items():
            lines.append(f"  {name:<34} {info['status']:<9} {info['seconds']:7.1f} s")
        if self.metrics:
            lines.append("Evaluation on the test split:")
            for key in _SUMMARY_METRICS:
                if key in self.metrics:
                    lines.append(f"  {key:<22} {_fmt(self.metrics[key])}")
            for label, values in sorted(self.metrics_by_label.items()):
                lines.append(f"  label={label:<16} binary_accuracy {_fmt(values.get(ACCURACY_METRIC))}"
                             f"  examples {_fmt(values.get('example_count'))}")
        lines.append(f"Baseline: {self.baseline_model or 'none (no model served yet: the accuracy bar alone decides)'}")
        lines.append(f"Blessed: {'yes' if self.blessed else 'no'} ({self.blessing_reason})")
        lines.append(f"Pushed model: {self.pushed_model_dir or 'none'}")
        if self.report:
            lines.append(f"Run page: {self.report}")
        return "\n".join(lines)


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def pipeline_names(store: metadata_store.MetadataStore) -> list[str]:
    return [context.name for context in store.get_contexts_by_type("pipeline")]


def latest_run_id(store: metadata_store.MetadataStore, pipeline_name: str) -> Optional[str]:
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return None
    runs = [c for c in store.get_contexts_by_type("pipeline_run")
            if any(p.id == pipeline.id for p in store.get_parent_contexts_by_context(c.id))]
    if not runs:
        runs = store.get_contexts_by_type("pipeline_run")
    return max(runs, key=lambda c: (c.create_time_since_epoch, c.id)).name if runs else None


def run_executions(store: metadata_store.MetadataStore, run_id: str) -> dict[str, list[metadata_store_pb2.Execution]]:
    """Executions of one run, by component (node) id."""
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run is None:
        return {}
    run_execution_ids = {e.id for e in store.get_executions_by_context(run.id)}
    by_node: dict[str, list[metadata_store_pb2.Execution]] = {}
    for node in store.get_contexts_by_type("node"):
        node_id = node.name.split(".", 1)[-1]
        for execution in store.get_executions_by_context(node.id):
            if execution.id in run_execution_ids:
                by_node.setdefault(node_id, []).append(execution)
    return by_node


def _output_artifacts(store, execution_id: int) -> list[metadata_store_pb2.Artifact]:
    events = store.get_events_by_execution_ids([execution_id])
    ids = [e.artifact_id for e in events if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
    return store.get_artifacts_by_id(ids) if ids else []


def artifacts_of_type(store, executions, type_name: str) -> list[metadata_store_pb2.Artifact]:
    try:
        type_id = store.get_artifact_type(type_name).id
    except errors.NotFoundError:
        return []
    found = []
    for execution in executions:
        found += [a for a in _output_artifacts(store, execution.id) if a.type_id == type_id]
    return found


def build_report(metadata_path: str, pipeline_name: str, profile: str,
                 component_seconds: dict[str, float], order: list[str]) -> RunReport:
    store = open_store(metadata_path)
    run_id = latest_run_id(store, pipeline_name)
    executions = run_executions(store, run_id) if run_id else {}
    components = {}
    for node_id in order:
        node_executions = executions.get(node_id, [])
        status = _STATES.get(node_executions[-1].last_known_state, "unknown") if node_executions else "not run"
        components[node_id] = {"status": status, "seconds": round(component_seconds.get(node_id, 0.0), 2)}

    metrics, by_label = {}, {}
    evaluations = artifacts_of_type(store, executions.get("Evaluator", []), "ModelEvaluation")
    if evaluations:
        metrics, by_label = read_metrics(evaluations[-1].uri)

    blessed, reason, baseline = False, "the Evaluator did not run", None
    blessings = artifacts_of_type(store, executions.get("Evaluator", []), "ModelBlessing")
    if blessings:
        blessed = blessings[-1].custom_properties["blessed"].int_value == 1
        reason = "passed the gate" if blessed else failure_reason(evaluations[-1].uri if evaluations else None)
        if "baseline_model" in blessings[-1].custom_properties:
            baseline = blessings[-1].custom_properties["baseline_model"].string_value

    pushed = None
    for artifact in artifacts_of_type(store, executions.get("Pusher", []), "PushedModel"):
        if artifact.custom_properties["pushed"].int_value == 1:
            pushed = artifact.custom_properties["pushed_destination"].string_value
    return RunReport(profile=profile, run_id=run_id, components=components, metrics=metrics,
                     metrics_by_label=by_label, blessed=blessed, blessing_reason=reason, pushed_model_dir=pushed,
                     baseline_model=baseline)


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
