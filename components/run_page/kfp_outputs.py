"""What the RunPage step hands Kubeflow Pipelines' and Vertex AI's UIs, in the shapes KFP's
SDK writes for its own artifact types (sdk/python/kfp/dsl/types/artifact_types.py:
`Metrics.log_metric`, `ClassificationMetrics.log_roc_curve` and `log_confusion_matrix`) and the
UI's viewers read (frontend/src/components/viewers/MetricsVisualizations.tsx)."""

from __future__ import annotations

import math
import os
from typing import Any, Optional

from components.evaluator.eval_config import ACCURACY_METRIC
from components.run_page import classification
from components.run_page.page_data import PageData
from components.run_page.record import SUMMARY_METRICS, format_number

# The UI lists an artifact only when it has a display name (MetricsVisualizations.tsx).
DISPLAY_NAMES = {
    "page": "Run page",
    "metrics": "Evaluation on the test split",
    "classification_metrics": "Test split: confusion matrix and ROC",
    "verdict": "Verdict",
}


def metrics(data: PageData) -> dict[str, float]:
    """The candidate's metrics on the test split, the accuracy per label ("binary_accuracy
    (cat)"), the gate's bar and allowed drop, and the baseline's accuracy when there was one;
    only finite numbers (precision is NaN when nothing is predicted positive, and neither ML
    Metadata nor KFP's metadata, JSON, holds a NaN)."""
    return {name: value for name, value in _metrics(data).items() if math.isfinite(value)}


def _metrics(data: PageData) -> dict[str, float]:
    result = data.result
    values = {key: float(result.metrics[key]) for key in SUMMARY_METRICS if key in result.metrics}
    for index, name in enumerate(data.label_names):
        accuracy = result.metrics_by_label.get(str(index), {}).get(ACCURACY_METRIC)
        if accuracy is not None:
            values[f"{ACCURACY_METRIC} ({name})"] = float(accuracy)
    if data.accuracy_bar is not None:
        values["accuracy_bar"] = float(data.accuracy_bar)
    if data.baseline_metrics.get(ACCURACY_METRIC) is not None:
        values[f"baseline {ACCURACY_METRIC}"] = float(data.baseline_metrics[ACCURACY_METRIC])
        if data.max_accuracy_drop is not None:
            values["max_accuracy_drop"] = float(data.max_accuracy_drop)
    return values


def confusion_matrix(data: PageData) -> Optional[dict[str, Any]]:
    """`confusionMatrix` as `log_confusion_matrix(categories, matrix)` writes it: rows are the
    true labels, columns the predicted ones (None without the per-label slices)."""
    matrix = classification.confusion_matrix(data.result.metrics_by_label, data.label_names)
    if matrix is None:
        return None
    return {"annotationSpecs": [{"displayName": name} for name in data.label_names],
            "rows": [{"row": [float(count) for count in row]} for row in matrix]}


def confidence_metrics(data: PageData) -> Optional[list[dict[str, float]]]:
    """`confidenceMetrics` as `log_roc_curve(fpr, tpr, threshold)` writes it (None when the
    model was not run on the test split)."""
    if not data.test_probabilities:
        return None
    return [{"confidenceThreshold": threshold, "recall": recall, "falsePositiveRate": fpr}
            for threshold, recall, fpr in classification.roc_points(data.test_labels, data.test_probabilities)]


def verdict_markdown(data: PageData) -> str:
    """Blessed or not and why, servable or not, what was pushed: a few lines for the UI."""
    result = data.result
    lines = [f"# {'Blessed' if result.blessed else 'Not blessed'}", "",
             f"**{'Blessed' if result.blessed else 'Not blessed'}**: {result.blessing_reason}."]
    accuracy = result.metrics.get(ACCURACY_METRIC)
    if accuracy is not None:
        bar = f" (bar {format_number(data.accuracy_bar)})" if data.accuracy_bar is not None else ""
        lines.append(f"- Accuracy on the test split: {format_number(accuracy)}{bar}")
    lines.append(f"- Baseline: {result.baseline_text()}")
    if result.infra_blessed is None:
        lines.append(f"- Serving check: not run ({result.infra_reason})")
    else:
        lines.append(f"- Serving check: {'servable' if result.infra_blessed else 'NOT servable'} ({result.infra_reason})")
    if result.pushed_model_dir:
        lines.append(f"- Pushed: version {os.path.basename(result.pushed_model_dir.rstrip('/'))} to "
                     f"`{result.pushed_model_dir}`")
    else:
        lines.append(f"- Pushed: {result.not_pushed_text()}")
    if result.trainer_device:
        lines.append(f"- Trained on: {result.trainer_device}")
    return "\n".join(lines) + "\n"
