"""A run's page as HTML: tables, matplotlib plots and images inline as data: URIs, no script."""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Any, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from components.evaluator.eval_config import ACCURACY_METRIC
from components.trainer import history as history_lib
from components.run_page import classification
from components.run_page.record import ComponentResult, RunResult, skipped_versions_text
from components.run_page.page_data import PageData

# (id, heading) of the page's sections, in order.
SECTIONS = (
    ("run", "The run"),
    ("data", "Data"),
    ("training", "Training"),
    ("evaluation", "Evaluation"),
    ("errors", "Errors"),
    ("serving-check", "Serving check"),
    ("verdict", "The verdict"),
)
METRIC_ORDER = ("binary_accuracy", "auc", "precision", "recall", "binary_crossentropy", "example_count")
# The Components table of a page the RunPage step wrote: steps' states and times are the
# orchestrator's, which the step never reads.
NO_ORCHESTRATOR_RECORD = ("Each step's status and duration are the orchestrator's: Kubeflow's run view shows them; "
                          "the local commands (run, run-compiled, report) add them to the page they write.")
_STATUS_COLOURS = {"ran": "#3b75af", "cached": "#a7a7a7"}
_FAILED_COLOUR = "#c0392b"


def status_word(status: str) -> str:
    """A component's state as the page says it: a component that ran, rather than came from the cache."""
    return "ran" if status == "complete" else status


# Plots


def figure_png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=80, pil_kwargs={"compress_level": 1})
    return out.getvalue()


def timeline_plot(components: list[ComponentResult]) -> bytes:
    """The components as bars on the run's clock, coloured by status."""
    spans = timeline_spans(components)
    end = max((start + seconds for start, seconds in spans), default=0.0) or 1.0
    height = 0.3 * len(components) + 0.9
    figure = Figure(figsize=(9, height))
    figure.subplots_adjust(left=0.17, right=0.98, top=1 - 0.15 / height, bottom=0.6 / height)
    axis = figure.subplots()
    for row, (component, (start, seconds)) in enumerate(zip(components, spans)):
        width = max(seconds, end / 300)
        status = status_word(component.status)
        axis.barh(row, width, left=start, color=_STATUS_COLOURS.get(status, _FAILED_COLOUR))
        axis.text(start + width + end / 100, row, f"{seconds:.1f} s {status}", va="center", fontsize=9)
    axis.set_yticks(range(len(components)), [c.name for c in components], fontsize=9)
    axis.invert_yaxis()
    axis.set_xlabel("seconds since the first component started")
    axis.set_xlim(0, end * 1.18)
    return figure_png(figure)


def timeline_spans(components: list[ComponentResult]) -> list[tuple[float, float]]:
    """(start, seconds) of each component; one without a recorded start follows the one before."""
    spans, clock = [], 0.0
    for component in components:
        start = component.start if component.start is not None else clock
        spans.append((start, component.seconds))
        clock = start + component.seconds
    return spans


def curves_plot(history: dict) -> bytes:
    """Loss and accuracy of both phases, train and validation, with the phase boundary."""
    figure = Figure(figsize=(10, 3.6))
    figure.subplots_adjust(left=0.06, right=0.99, top=0.92, bottom=0.14, wspace=0.15)
    epochs = history["epoch"]
    boundary = next((e - 0.5 for e, p in zip(epochs, history["phase"]) if p == 2), None)
    for axis, metric in zip(figure.subplots(1, len(history_lib.METRICS)), history_lib.METRICS):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if history.get(key):
                axis.plot(epochs[: len(history[key])], history[key], marker="o", markersize=3, label=label)
        if boundary is not None:
            axis.axvspan(boundary, epochs[-1] + 0.5, color="#f3e3c3", alpha=0.6, label="phase 2: fine-tuning")
            axis.axvline(boundary, color="grey", linestyle="--")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend(fontsize=8)
    return figure_png(figure)


def roc_plot(labels: Sequence[int], probabilities: Sequence[float], auc: Optional[float]) -> bytes:
    figure = Figure(figsize=(4.2, 4))
    figure.subplots_adjust(left=0.15, right=0.97, top=0.92, bottom=0.12)
    axis = figure.subplots()
    fpr, tpr, _ = classification.roc_curve(labels, probabilities)
    axis.plot(fpr, tpr, label=f"model (AUC {auc:.4f})" if auc is not None else "model")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.set_title("ROC on the test split")
    axis.legend(fontsize=8, loc="lower right")
    return figure_png(figure)


# Rendering


_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 1.5em auto; max-width: 70em; color: #222;
       line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
nav a { margin-right: 1em; } .pass { color: #1e7b34; font-weight: bold; } .fail { color: #b03a2e; font-weight: bold; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; width: 150px; font-size: 0.8em; }
figure img { display: block; width: 128px; height: 128px; object-fit: contain; background: #eee; }
.file { overflow-wrap: anywhere; color: #555; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; } .missing { color: #777; font-style: italic; }
"""


def render(data: PageData) -> str:
    """The whole page, one string: no script, nothing fetched."""
    sections = {
        "run": run_section(data), "data": data_section(data), "training": training_section(data),
        "evaluation": evaluation_section(data), "errors": errors_section(data),
        "serving-check": serving_check_section(data), "verdict": verdict_section(data),
    }
    # A Kubeflow task is told no run id (TFX's entrypoint gives its executors none).
    title = f"{data.result.pipeline_name}: run {data.result.run_id}" if data.result.run_id else data.result.pipeline_name
    nav = " ".join(f'<a href="#{key}">{_e(heading)}</a>' for key, heading in SECTIONS)
    body = "\n".join(f'<section id="{key}">\n<h2>{_e(heading)}</h2>\n{sections[key]}\n</section>'
                     for key, heading in SECTIONS)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{_e(title)}</h1>\n<nav>{nav}</nav>\n{body}\n"
            "</body>\n</html>\n")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"


def _number(value: Optional[float], name: str = "", text: Optional[str] = None) -> str:
    """A table cell with the value rounded for reading (or `text`) and exact in data-value."""
    exact = f' data-value="{_exact(value)}"' if value is not None else ""
    metric = f' data-metric="{_e(name)}"' if name else ""
    return f'<td class="number"{metric}{exact}>{_e(text) if text is not None else _fmt(value)}</td>'


def _exact(value: float) -> str:
    """The value as Python reads it back: repr of the int or float (numpy scalars included)."""
    return repr(int(value)) if isinstance(value, (int, np.integer)) else repr(float(value))


def _seconds(value: Optional[float]) -> str:
    return _number(value, text=f"{value:.2f}" if value is not None else "-")


def _img(png_or_jpeg: bytes, alt: str, mime: str = "image/png") -> str:
    encoded = base64.b64encode(png_or_jpeg).decode("ascii")
    return f'<img src="data:{mime};base64,{encoded}" alt="{_e(alt)}">'


def _table(header: Sequence[str], rows: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(f"<tr>{row}</tr>" for row in rows) + "\n</table>"


def _missing(what: str) -> str:
    return f'<p class="missing">{_e(what)}</p>'


def run_section(data: PageData) -> str:
    facts = [
        ("pipeline", data.result.pipeline_name), ("run", data.result.run_id or "-"), ("profile", data.result.profile),
        ("wall time", f"{data.result.wall_seconds:.1f} s" if data.result.wall_seconds is not None else "-"),
    ]
    parts = ["<table>\n" + "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts) + "\n</table>"]
    parts.append("<h3>Config that differs from the profile</h3>")
    if data.config_changes:
        rows = [f"<td>{_e(k)}</td><td>{_e('-' if profile is None else profile)}</td><td>{_e(run)}</td>"
                for k, (profile, run) in sorted(data.config_changes.items())]
        parts.append(_table(("key", f"profile {data.result.profile}", "this run"), rows))
    else:
        parts.append(f"<p>None: the {_e(data.result.profile)} profile as it is.</p>")
    parts.append("<h3>Components</h3>")
    if not data.result.components:
        parts.append(f"<p>{_e(NO_ORCHESTRATOR_RECORD)}</p>")
        return "\n".join(parts)
    rows = [f"<td>{_e(c.name)}</td><td>{_e(status_word(c.status))}</td>{_seconds(c.seconds)}"
            for c in data.result.components]
    parts.append(_table(("component", "status", "seconds"), rows))
    parts.append(_img(timeline_plot(data.result.components), "timeline of the components"))
    return "\n".join(parts)


def data_section(data: PageData) -> str:
    parts = []
    splits = list(data.split_sizes) or list(data.split_counts)
    if splits:
        rows = []
        for split in splits:
            counts = data.split_counts.get(split, {})
            cells = "".join(_number(counts.get(label)) for label in data.label_names)
            total = data.split_sizes.get(split, sum(counts.values()) if counts else None)
            rows.append(f"<td>{_e(split)}</td>{cells}{_number(total)}")
        parts.append(_table(("split", *data.label_names, "examples"), rows))
    else:
        parts.append(_missing("No examples recorded for this run."))
    parts.append(f"<p>{_e(data.skipped_files)}</p>" if data.skipped_files else _missing("No record of skipped files."))
    parts.append("<h3>Training images after Transform</h3>")
    if data.samples:
        figures = [f"<figure>{_img(png, f'transformed {label}')}<figcaption>{_e(label)}</figcaption></figure>"
                   for png, label in data.samples]
        parts.append('<div class="gallery">' + "".join(figures) + "</div>")
    else:
        parts.append(_missing("No transformed examples."))
    return "\n".join(parts)


def training_section(data: PageData) -> str:
    history = data.history
    if not history or not history.get("epoch"):
        return _missing("No training history (training_history.json) for this run.")
    phases = history.get("phase", [])
    parts = [_img(curves_plot(history), "loss and accuracy per epoch")]
    summary = []
    for phase, name in ((1, "frozen base, new head"), (2, "fine-tuning")):
        epochs = [e for e, p in zip(history["epoch"], phases) if p == phase]
        timed = [data.epoch_seconds[e] for e in epochs if e in data.epoch_seconds]
        mean = f", {sum(timed) / len(timed):.1f} s per epoch" if timed else ""
        summary.append(f"phase {phase} ({name}): {len(epochs)} epochs{mean}")
    parts.append(f"<p>{_e('; '.join(summary))}.</p>")
    if data.result.trainer_device:
        parts.append(f"<p>Trained on {_e(data.result.trainer_device)}.</p>")
    if history.get("resumed_at_epoch"):
        epochs = ", ".join(map(str, history["resumed_at_epoch"]))
        parts.append(f"<p>Resumed from a checkpoint at epoch {_e(epochs)}.</p>")
    keys = [k for k in ("loss", "binary_accuracy", "val_loss", "val_binary_accuracy") if history.get(k)]
    rows = []
    for i, epoch in enumerate(history["epoch"]):
        values = "".join(_number(history[k][i] if i < len(history[k]) else None) for k in keys)
        seconds = data.epoch_seconds.get(epoch)
        rows.append(f"<td>{epoch}</td><td>{phases[i] if i < len(phases) else '-'}</td>{values}{_seconds(seconds)}")
    parts.append(_table(("epoch", "phase", *keys, "seconds"), rows))
    return "\n".join(parts)


def evaluation_section(data: PageData) -> str:
    if not data.result.metrics:
        return _missing("No evaluation for this run.")
    names = [m for m in METRIC_ORDER if m in data.result.metrics] + sorted(set(data.result.metrics) - set(METRIC_ORDER))
    rows = []
    for name in names:
        change = data.metric_changes.get(name)
        rows.append(f"<td>{_e(name)}</td>{_number(data.result.metrics[name], name)}"
                    f"{_number(data.baseline_metrics.get(name))}"
                    f'<td class="number">{f"{change:+.4f}" if change is not None else "-"}</td>')
    parts = ["<p>TFMA on the test split.</p>", _table(("metric", "this model", "baseline", "change"), rows)]
    parts.append(gate_paragraph(data))
    parts.append("<h3>Per label</h3>")
    label_rows = [f"<td>{_e(_label_name(data, key))}</td>{_number(values.get('example_count'))}"
                  f"{_number(values.get(ACCURACY_METRIC), f'{ACCURACY_METRIC}@{_label_name(data, key)}')}"
                  for key, values in sorted(data.result.metrics_by_label.items())]
    parts.append(_table(("label", "examples", "binary_accuracy"), label_rows))
    parts.append("<h3>Confusion matrix</h3>")
    parts.append(confusion_table(data))
    if data.test_probabilities:
        parts.append(_img(roc_plot(data.test_labels, data.test_probabilities, data.result.metrics.get("auc")), "ROC curve"))
    else:
        parts.append(_missing("No ROC curve: the model could not be run on the test split."))
    return "\n".join(parts)


def _label_name(data: PageData, key: str) -> str:
    return data.label_names[int(key)] if key.isdigit() and int(key) < len(data.label_names) else key


def gate_paragraph(data: PageData) -> str:
    accuracy = data.result.metrics.get(ACCURACY_METRIC)
    parts = []
    if data.accuracy_bar is not None and accuracy is not None:
        passed = accuracy >= data.accuracy_bar
        parts.append(f'Accuracy bar {data.accuracy_bar:g}: {_fmt(accuracy)} '
                     f'<span class="{"pass" if passed else "fail"}">{"passes" if passed else "is below it"}</span>.')
    change = data.metric_changes.get(ACCURACY_METRIC)
    if change is not None and data.max_accuracy_drop is not None:
        passed = change > -(data.max_accuracy_drop + 1e-9)
        parts.append(f'Against the baseline: {change:+.4f}, allowed drop {data.max_accuracy_drop:g} '
                     f'<span class="{"pass" if passed else "fail"}">{"passes" if passed else "fails"}</span>.')
    elif not data.baseline_metrics:
        parts.append(no_baseline_sentence(data.result))
    return f"<p>{' '.join(parts)}</p>"


def no_baseline_sentence(result: RunResult) -> str:
    if result.evaluated_in_run:
        return (f"No baseline: no model was served when run {result.evaluated_in_run} evaluated, so the accuracy "
                "bar alone decided.")
    return "No baseline: no model was being served, so the accuracy bar alone decides."


def confusion_table(data: PageData) -> str:
    """Rows: true label; columns: predicted label."""
    matrix = classification.confusion_matrix(data.result.metrics_by_label, data.label_names)
    if matrix is None:
        return _missing("No per-label metrics to build it from.")
    rows = [f"<th>{_e(name)}</th>" + "".join(_number(c) for c in cells) for name, cells in zip(data.label_names, matrix)]
    return _table(("true \\ predicted", *data.label_names), rows)


def errors_section(data: PageData) -> str:
    if not data.test_probabilities:
        return _missing("The model was not run on the test split (no model or no test examples).")
    total = len(data.test_probabilities)
    capped = data.test_split_size and total < data.test_split_size
    of_split = f" (the first {total} of {data.test_split_size})" if capped else ""
    intro = (f"<p>{data.num_wrong} of {total} test images{of_split} misclassified at the 0.5 threshold; "
             f"the {len(data.errors)} the model was most confident about:</p>")
    if not data.errors:
        return intro
    positive = data.label_names[1]
    figures = [
        f'<figure>{_img(e.thumbnail, f"{e.label} taken for {e.predicted}", "image/jpeg")}'
        f"<figcaption>true {_e(e.label)}, predicted {_e(e.predicted)}<br>P({_e(positive)}) {e.probability:.3f}<br>"
        f'<span class="file">{_e(e.file_name or "(no file name)")}</span></figcaption></figure>'
        for e in data.errors
    ]
    return intro + '\n<div class="gallery">' + "".join(figures) + "</div>"


def serving_check_section(data: PageData) -> str:
    """The InfraValidator's verdict and each request it sent to TF Serving's loader."""
    result = data.result
    if result.infra_blessed is None:
        return _missing("The InfraValidator did not run: the candidate was not tried in TF Serving's loader.")
    word = "Servable" if result.infra_blessed else "Not servable"
    parts = [f'<p><span class="{"pass" if result.infra_blessed else "fail"}">{word}</span>: '
             f"{_e(result.infra_reason)}.</p>"]
    if data.serving_checks:
        rows = [f"<td>{_e(check.get('name'))}</td><td>{'passed' if check.get('passed') else 'FAILED'}</td>"
                f"{_seconds(check.get('seconds'))}<td>{_e(check.get('detail'))}</td>" for check in data.serving_checks]
        parts.append(_table(("request", "result", "seconds", "detail"), rows))
    return "\n".join(parts)


def verdict_section(data: PageData) -> str:
    result = data.result
    verdict = "Blessed" if result.blessed else "Not blessed"
    parts = [f'<p><span class="{"pass" if result.blessed else "fail"}">{verdict}</span>: {_e(result.blessing_reason)}.</p>']
    if result.evaluated_in_run:
        parts.append(f'<p class="cached">From the cache: evaluated in run <code>{_e(result.evaluated_in_run)}</code> '
                     f"against baseline {_e(result.baseline_model or 'none')}; the served model is the one that "
                     "verdict holds for.</p>")
    parts.append(f"<p>Baseline: {_e(result.baseline_text())}.</p>")
    if result.skipped_versions:
        parts.append(f"<p>Skipped serving versions: {_e(skipped_versions_text(result.skipped_versions))}.</p>")
    if result.pushed_model_dir:
        parts.append(f"<p>Pushed version {_e(os.path.basename(result.pushed_model_dir))} to "
                     f"<code>{_e(result.pushed_model_dir)}</code>.</p>")
    elif result.pushed_earlier:
        parts.append(f"<p>Nothing pushed by this run: the Pusher came from the cache; run "
                     f"<code>{_e(result.pushed_in_run or '?')}</code> pushed <code>{_e(result.pushed_earlier)}</code>.</p>")
    else:
        kept = f": TF Serving keeps serving {_e(result.baseline_model)}" if result.baseline_model else ""
        parts.append(f"<p>Nothing pushed{' by this run' if result.evaluated_in_run else ''}{kept}.</p>")
    if result.served_now or result.pushed_earlier or result.evaluated_in_run:
        whose = f" (this run's own candidate{pushed_by(result)})" if result.candidate_served else ""
        parts.append(f"<p>The version served now: <code>{_e(result.served_now or 'none')}</code>{_e(whose)}.</p>")
    if data.model_serving_dir:
        parts.append("<p>TF Serving serves the newest version in the model's folder:</p>")
        parts.append(f"<pre>{_e(serving_command(data.model_serving_dir))}</pre>")
    return "\n".join(parts)


def pushed_by(result: RunResult) -> str:
    """", pushed by run X" when an earlier run pushed this run's candidate (a cached Pusher)."""
    return f", pushed by run {result.pushed_in_run}" if result.pushed_earlier and result.pushed_in_run else ""


def serving_command(model_base_path: str) -> str:
    name = os.path.basename(model_base_path.rstrip("/"))
    return (f"tensorflow_model_server --port=8500 --rest_api_port=8501 \\\n"
            f"  --model_name={name} --model_base_path={model_base_path}\n\n"
            f"docker run -p 8501:8501 -p 8500:8500 \\\n"
            f"  --mount type=bind,source={model_base_path},target=/models/{name} \\\n"
            f"  -e MODEL_NAME={name} tensorflow/serving")
