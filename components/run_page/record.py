"""One record of what a pipeline run did, whichever runner ran it.

The RunPage step fills it from its inputs alone (executor.py); the local commands read a
local run's record from ML Metadata (pipeline/results/metadata.py) and a compiled run's from
kfp.local's task outputs (pipeline/results/task_outputs.py), and add what only the orchestrator
knows: each step's status and duration, and which came from the cache. The console summary,
`--summary-json` and the run page are all made from it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

from components.evaluator.eval_config import ACCURACY_METRIC

# Metric names in the summary, by TFMA metric key name.
SUMMARY_METRICS = ("binary_accuracy", "auc", "precision", "recall", "binary_crossentropy", "example_count")
# The steps' component ids, as the text names them (tests/steps_test.py checks them against
# pipeline/steps.py, which record readers and the orchestration side use).
TRAINER, EVALUATOR, INFRA_VALIDATOR, PUSHER = "Trainer", "Evaluator", "InfraValidator", "Pusher"
NO_BASELINE = "none (no model served yet: the accuracy bar alone decides)"
# The fields `--summary-json` writes, in the record's terms.
# `pushed_model_dir` is what this run pushed (None when its Pusher came from the cache: the
# push, `pushed_earlier`, was an earlier run's, `pushed_in_run`).
SUMMARY_FIELDS = ("profile", "run_id", "metrics", "metrics_by_label", "blessed", "blessing_reason",
                  "pushed_model_dir", "baseline_model", "wall_seconds", "run_page",
                  "evaluated_in_run", "pushed_in_run", "pushed_earlier", "served_now", "candidate_served",
                  "skipped_versions", "infra_blessed", "infra_reason", "trainer_device")


@dataclasses.dataclass
class ComponentResult:
    name: str
    status: str  # "complete", "cached", "failed", "not run", ... (ML Metadata's states, lowercase)
    seconds: float
    # Seconds after the run's first component started; None when unknown.
    start: Optional[float] = None


@dataclasses.dataclass
class Artifact:
    """One output of a component: where it is and the properties recorded with it."""

    uri: str
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RunResult:
    pipeline_name: str
    run_id: Optional[str]
    profile: str
    components: list[ComponentResult]  # in the order they ran; those that did not run last
    wall_seconds: Optional[float] = 0.0  # None where the orchestrator's times are unknown (the RunPage step)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    metrics_by_label: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    blessed: bool = False
    blessing_reason: str = f"the {EVALUATOR} did not run"
    # The model the candidate was compared with: the version being served when the run began.
    baseline_model: Optional[str] = None
    pushed_model_dir: Optional[str] = None
    # Outputs by (component, output key), e.g. (TRAINER, "model"), and each component's
    # execution properties (a compiled run: its runtime parameters).
    artifacts: dict[tuple[str, str], Artifact] = dataclasses.field(default_factory=dict)
    # The same outputs by the RunPage step's input each one is ("model", "evaluation", ...):
    # what the page and the outcome read (components/run_page/spec.py names them).
    page_inputs: dict[str, Artifact] = dataclasses.field(default_factory=dict)
    execution_properties: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # The run's HTML page, once written (pipeline/run_page).
    run_page: Optional[str] = None
    # A component taken from the cache: the run whose execution produced its outputs.
    cached_from: dict[str, str] = dataclasses.field(default_factory=dict)
    # A cached Evaluator: the run that made the verdict (None when this run made it).
    evaluated_in_run: Optional[str] = None
    # A cached Pusher that had pushed: the version pushed then and the run that pushed it.
    pushed_earlier: Optional[str] = None
    pushed_in_run: Optional[str] = None
    # The version served when the record was read (the newest loadable one), and whether it
    # is this run's candidate (pushed by this run or by the earlier run whose push it reused).
    served_now: Optional[str] = None
    candidate_served: bool = False
    # Versions newer than the baseline that the Evaluator skipped, newest first:
    # [{"version": ..., "path": ..., "reason": ...}].
    skipped_versions: list[dict[str, str]] = dataclasses.field(default_factory=list)
    # The InfraValidator's verdict (None when it did not run) and its reason: whether the
    # candidate loaded and answered in TF Serving's loader.
    infra_blessed: Optional[bool] = None
    infra_reason: str = f"the {INFRA_VALIDATOR} did not run"
    # Where the Trainer trained: "CPU (...)" or "GPU: N x NAME (...), precision" (None: unknown).
    trainer_device: Optional[str] = None

    def output(self, component: str, key: str) -> Optional[Artifact]:
        return self.artifacts.get((component, key))

    def component(self, name: str) -> Optional[ComponentResult]:
        return next((component for component in self.components if component.name == name), None)

    def summary(self) -> dict[str, Any]:
        """What `--summary-json` writes."""
        values = {name: getattr(self, name) for name in SUMMARY_FIELDS}
        values["components"] = {component.name: {"status": component.status, "seconds": component.seconds}
                                for component in self.components}
        return values

    def to_json(self) -> str:
        return json.dumps(self.summary(), indent=2, sort_keys=True)

    def render(self) -> str:
        """The console summary."""
        wall = f", {self.wall_seconds:.1f} s" if self.wall_seconds is not None else ""
        lines = [f"Pipeline run {self.run_id} ({self.profile} profile){wall}"]
        if self.components:
            lines.append("Components:")
        for component in self.components:
            lines.append(f"  {component.name:<34} {component.status:<9} {component.seconds:7.1f} s")
        if self.trainer_device:
            lines.append(f"{TRAINER} device: {self.trainer_device}")
        if self.metrics:
            lines.append("Evaluation on the test split:")
            for key in SUMMARY_METRICS:
                if key in self.metrics:
                    lines.append(f"  {key:<22} {format_number(self.metrics[key])}")
            for label, values in sorted(self.metrics_by_label.items()):
                lines.append(f"  label={label:<16} binary_accuracy {format_number(values.get(ACCURACY_METRIC))}"
                             f"  examples {format_number(values.get('example_count'))}")
        if self.evaluated_in_run:
            lines.append(f"{EVALUATOR}: cached, evaluated in run {self.evaluated_in_run} against baseline "
                         f"{self.baseline_model or 'none'}")
        lines.append(f"Baseline: {self.baseline_text()}")
        if self.skipped_versions:
            lines.append(f"Skipped serving versions: {skipped_versions_text(self.skipped_versions)}")
        lines.append(f"Blessed: {'yes' if self.blessed else 'no'} ({self.blessing_reason})")
        if self.infra_blessed is not None:
            lines.append(f"Serving check: {'passed' if self.infra_blessed else 'FAILED'} ({self.infra_reason})")
        lines.append(f"Pushed model: {self.pushed_model_dir or self.not_pushed_text()}")
        if self.run_page:
            lines.append(f"Run page: {self.run_page}")
        return "\n".join(lines)

    def baseline_text(self) -> str:
        """What "Baseline" says: the model the candidate was compared with, or why there was none
        (a cached verdict's: when the run that made it evaluated, whatever is served now)."""
        if self.baseline_model:
            return self.baseline_model
        if self.evaluated_in_run:
            return (f"none (no model was served when run {self.evaluated_in_run} evaluated: the accuracy bar "
                    "alone decided)")
        return NO_BASELINE

    def served_text(self) -> str:
        """The version served now, and whether it is this run's own candidate."""
        if not self.served_now:
            return "none"
        return f"{self.served_now}, this run's own candidate" if self.candidate_served else self.served_now

    def not_pushed_text(self) -> str:
        """What "Pushed model" says when this run pushed nothing."""
        served = f"the version served now: {self.served_text()}"
        if self.pushed_earlier:
            return f"none by this run (pushed in run {self.pushed_in_run or '?'}: {self.pushed_earlier}; {served})"
        if self.evaluated_in_run or PUSHER in self.cached_from:
            return f"none by this run ({served})"
        return f"none ({served})" if self.served_now else "none"


def plain_properties(custom_properties: Any) -> dict[str, Any]:
    """ML Metadata's custom properties (a map of metadata_store_pb2.Value) as plain values;
    a struct is None (the RunPage executor reads TFX's JSON values itself: input_properties)."""
    values = {}
    for key, value in custom_properties.items():
        kind = value.WhichOneof("value")
        values[key] = getattr(value, kind) if kind in ("int_value", "double_value", "string_value") else None
    return values


def skipped_versions_text(skipped: list[dict[str, str]]) -> str:
    """"2 (1950000000: empty folder (no saved_model.pb); 1900000000: no saved_model.pb)"."""
    names = "; ".join(f"{item.get('version')}: {item.get('reason')}" for item in skipped)
    return f"{len(skipped)} ({names})"


def format_number(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"
