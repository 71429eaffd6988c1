"""One record of what a pipeline run did, whichever runner ran it.

A local run's record is read from ML Metadata (results/metadata.py), a compiled run's from
kfp.local's task outputs (results/task_outputs.py); both fill the same fields, and the
console summary, `--summary-json` and the run page are all made from it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

from components.evaluator.eval_config import ACCURACY_METRIC

# Metric names in the summary, by TFMA metric key name.
SUMMARY_METRICS = ("binary_accuracy", "auc", "precision", "recall", "binary_crossentropy", "example_count")
NO_BASELINE = "none (no model served yet: the accuracy bar alone decides)"
# The outputs a run's record keeps, by (component, output key), with their ML Metadata types.
RESULT_OUTPUTS = {
    ("TfdsExampleGen", "examples"): "Examples",
    ("StatisticsGen", "statistics"): "ExampleStatistics",
    ("Transform", "transformed_examples"): "Examples",
    ("Trainer", "model"): "Model",
    ("Trainer", "model_run"): "ModelRun",
    ("Evaluator", "evaluation"): "ModelEvaluation",
    ("Evaluator", "blessing"): "ModelBlessing",
    ("Pusher", "pushed_model"): "PushedModel",
}
# The fields `--summary-json` writes, in the record's terms.
SUMMARY_FIELDS = ("profile", "run_id", "metrics", "metrics_by_label", "blessed", "blessing_reason",
                  "pushed_model_dir", "baseline_model", "wall_seconds", "run_page")


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
    wall_seconds: float = 0.0
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    metrics_by_label: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    blessed: bool = False
    blessing_reason: str = "the Evaluator did not run"
    # The model the candidate was compared with: the version being served when the run began.
    baseline_model: Optional[str] = None
    pushed_model_dir: Optional[str] = None
    # Outputs by (component, output key), e.g. ("Trainer", "model"), and each component's
    # execution properties (a compiled run: its runtime parameters).
    artifacts: dict[tuple[str, str], Artifact] = dataclasses.field(default_factory=dict)
    execution_properties: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # The run's HTML page, once written (pipeline/run_page).
    run_page: Optional[str] = None

    def output(self, component: str, key: str) -> Optional[Artifact]:
        return self.artifacts.get((component, key))

    def component(self, name: str) -> Optional[ComponentResult]:
        return next((component for component in self.components if component.name == name), None)

    def unfinished(self) -> list[str]:
        """Components that failed or never ran."""
        return [component.name for component in self.components if component.status in ("failed", "not run")]

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
        lines = [f"Pipeline run {self.run_id} ({self.profile} profile), {self.wall_seconds:.1f} s", "Components:"]
        for component in self.components:
            lines.append(f"  {component.name:<34} {component.status:<9} {component.seconds:7.1f} s")
        if self.metrics:
            lines.append("Evaluation on the test split:")
            for key in SUMMARY_METRICS:
                if key in self.metrics:
                    lines.append(f"  {key:<22} {format_number(self.metrics[key])}")
            for label, values in sorted(self.metrics_by_label.items()):
                lines.append(f"  label={label:<16} binary_accuracy {format_number(values.get(ACCURACY_METRIC))}"
                             f"  examples {format_number(values.get('example_count'))}")
        lines.append(f"Baseline: {self.baseline_model or NO_BASELINE}")
        lines.append(f"Blessed: {'yes' if self.blessed else 'no'} ({self.blessing_reason})")
        lines.append(f"Pushed model: {self.pushed_model_dir or 'none'}")
        if self.run_page:
            lines.append(f"Run page: {self.run_page}")
        return "\n".join(lines)


def format_number(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"
