"""The model as a binary classifier on the test split: the confusion matrix (from TFMA's
per-label slices) and the ROC curve (from the page's run of the model over the split), shared
by the page's plots and tables and the ClassificationMetrics output."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from components.evaluator.eval_config import ACCURACY_METRIC

# ROC points handed to KFP's UI at most: its plot and table take every point given.
MAX_ROC_POINTS = 200


def confusion_matrix(metrics_by_label: dict[str, dict[str, float]],
                     label_names: Sequence[str]) -> Optional[list[list[int]]]:
    """Rows: true label; columns: predicted label (None without both labels' slices). The
    accuracy on the slice of label i is the share of its examples predicted as i."""
    if len(metrics_by_label) != 2 or len(label_names) != 2:
        return None
    rows = []
    for index in range(2):
        values = metrics_by_label.get(str(index), {})
        count, accuracy = values.get("example_count"), values.get(ACCURACY_METRIC)
        if count is None or accuracy is None:
            return None
        correct = int(round(accuracy * count))
        rows.append([correct, int(count) - correct] if index == 0 else [int(count) - correct, correct])
    return rows


def roc_curve(labels: Sequence[int], probabilities: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates, thresholds) with one point per example, the
    examples ranked by probability: the point after example k is what predicting the positive
    label at probability >= its probability gives. The first point is (0, 0) at a threshold
    above every probability."""
    order = np.argsort(-np.asarray(probabilities, dtype=float), kind="stable")
    sorted_labels = np.asarray(labels, dtype=float)[order]
    positives = max(int(sorted_labels.sum()), 1)
    negatives = max(len(sorted_labels) - int(sorted_labels.sum()), 1)
    tpr = np.concatenate([[0.0], np.cumsum(sorted_labels) / positives])
    fpr = np.concatenate([[0.0], np.cumsum(1 - sorted_labels) / negatives])
    thresholds = np.concatenate([[1.0 + 1e-9], np.asarray(probabilities, dtype=float)[order]])
    return fpr, tpr, thresholds


def roc_points(labels: Sequence[int], probabilities: Sequence[float],
               max_points: int = MAX_ROC_POINTS) -> list[tuple[float, float, float]]:
    """(threshold, true positive rate (recall), false positive rate) at each distinct
    threshold, from the highest down, at most `max_points` of them (evenly spaced in rank,
    the first and the last kept)."""
    fpr, tpr, thresholds = roc_curve(labels, probabilities)
    # Tied probabilities make one threshold: keep the last point of each run of equal thresholds.
    last_of_tie = np.append(thresholds[1:] != thresholds[:-1], True)
    points = [(float(t), float(r), float(f)) for t, r, f, keep in zip(thresholds, tpr, fpr, last_of_tie) if keep]
    if len(points) > max_points:
        picks = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
        points = [points[i] for i in picks]
    return points
