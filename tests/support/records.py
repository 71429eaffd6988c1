"""A local run's record as a compiled run would give it, for comparing the two; a compiled
run's record as `run-compiled` made it."""

import dataclasses
import glob
import math
import os
import re
import types

from components import features
from components.evaluator.eval_config import build_eval_config
from components.run_page.record import RunResult
from pipeline import steps
from pipeline.results.task_outputs import TaskRecord, from_task_outputs


def compiled_twin(local: RunResult, run_id: str, parameters: dict) -> RunResult:
    """The record kfp.local's outputs would give for the same tasks: each output artifact with
    its properties as task metadata, whose numbers KFP carries as floats."""
    records = {}
    for component in local.components:
        outputs = {key: types.SimpleNamespace(
                       uri=artifact.uri,
                       metadata={k: float(v) if isinstance(v, int) else v for k, v in artifact.properties.items()})
                   for (task, key), artifact in local.artifacts.items() if task == component.name}
        records[component.name] = TaskRecord(component.status, component.seconds, component.start or 0.0, outputs)
    return from_task_outputs(local.pipeline_name, run_id, records, [c.name for c in local.components],
                             parameters=parameters, wall_seconds=local.wall_seconds)


def compiled_run_records(kfp_root) -> list[RunResult]:
    """The records `run-compiled` made of the runs under its pipeline root, oldest first (a run
    none of whose tasks finished left none), rebuilt from what it made them of: each task's
    executor output, `<root>/<pipeline>-<start time>/<task folder>/executor_output.json`, read
    as kfp.local reads it into the task's outputs. Statuses and times are not kept there."""
    from kfp.local import executor_input_utils, executor_output_utils

    from pipeline import steps

    records = []
    for run_folder in sorted(glob.glob(os.path.join(str(kfp_root), "*-[0-9]*-[0-9]*"))):  # kfp.local's start times sort
        tasks = {}
        for step in steps.STEPS:
            # kfp.local names a task's folder after its component's name less a "comp-" prefix,
            # which TFX's compiler does not give (the RunPage step's folder is "ge").
            folder = os.path.join(run_folder, executor_input_utils.get_local_task_resource_name(step.id))
            output_file = os.path.join(folder, "executor_output.json")
            if os.path.isfile(output_file):
                executor_output = executor_output_utils.load_executor_output(output_file)
                outputs = {key: executor_output_utils.artifact_list_to_dsl_artifact(artifacts, is_artifact_list=False)
                           for key, artifacts in executor_output.artifacts.items()}
                tasks[step.id] = TaskRecord("complete", 0.0, 0.0, outputs)
        if tasks:
            records.append(from_task_outputs(os.path.basename(run_folder), os.path.basename(run_folder), tasks,
                                             [step.id for step in steps.STEPS]))
    return records


# The metadata keys of the RunPage step's outputs in a compiled run's record, the same whether
# its tasks ran as processes or in the image: the metrics (the allowed drop and the baseline's
# accuracy only where the run had a baseline), the name KFP's UI lists each output by, and
# TFX's `tfx_version` tag (which pipeline/task/entrypoint.py drops from the metrics alone).
RUN_PAGE_METADATA_KEYS = {
    "page": {"display_name", "tfx_version"},
    "verdict": {"display_name", "tfx_version"},
    "metrics": {"display_name", "binary_accuracy", "auc", "precision", "recall", "binary_crossentropy",
                "example_count", "binary_accuracy (cat)", "binary_accuracy (dog)", "accuracy_bar"},
    "classification_metrics": {"display_name", "tfx_version", "confusionMatrix", "confidenceMetrics"},
}
WITH_A_BASELINE = {"metrics": {"baseline binary_accuracy", "max_accuracy_drop"}}
SUMMARY_METRICS = ("binary_accuracy", "auc", "precision", "recall")


def run_page_metadata_keys(summary: dict) -> dict[str, set]:
    """RUN_PAGE_METADATA_KEYS for a run with the given summary."""
    extra = WITH_A_BASELINE if summary["baseline_model"] else {}
    return {key: keys | extra.get(key, set()) for key, keys in RUN_PAGE_METADATA_KEYS.items()}


def run_page_problems(record: RunResult, summary: dict) -> list[str]:
    """What the RunPage step's outputs in a compiled run's record (compiled_run_records) get
    wrong against the run's summary: its page one self-contained HTML file (no script, nothing
    fetched: every src a data: URI, every link a #fragment), its verdict a Markdown file whose
    heading is the summary's `blessed`, its metrics the summary's, its confusion matrix's rows
    the test split's examples per label, each output with a display name and the metadata keys
    of run_page_metadata_keys."""
    problems = []
    outputs = {key: record.output("RunPage", key) for key in RUN_PAGE_METADATA_KEYS}
    missing = [key for key, artifact in outputs.items() if artifact is None]
    if missing:
        return [f"the record has no RunPage output {', '.join(missing)}"]
    for key, keys in run_page_metadata_keys(summary).items():
        if set(outputs[key].properties) != keys:
            problems.append(f"{key}: metadata keys {sorted(outputs[key].properties)}, expected {sorted(keys)}")
    for key, artifact in outputs.items():
        if not isinstance(artifact.properties.get("display_name"), str) or not artifact.properties["display_name"]:
            problems.append(f"{key}: no display_name in {artifact.properties}")
    page, verdict = outputs["page"].uri, outputs["verdict"].uri
    if not os.path.isfile(page):
        problems.append(f"page: {page} is not a file")
    else:
        text = open(page, encoding="utf-8").read()
        sources = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]*)""", text, re.I)
        links = re.findall(r"""\bhref\s*=\s*["']?([^"'\s>]*)""", text, re.I)
        urls = re.findall(r"""url\(\s*["']?([^"')\s]*)""", text, re.I)
        if not text.startswith("<!DOCTYPE html>"):
            problems.append(f"page: not an HTML document: {text[:80]!r}")
        if re.search(r"<script", text, re.I):
            problems.append("page: has a <script")
        if not re.findall(r"<img\s[^>]*src=\"data:image/", text):
            problems.append("page: no image inline")
        problems += [f"page: src {source[:60]!r} is not a data: URI"
                     for source in sources + urls if not source.startswith("data:")]
        problems += [f"page: href {link[:60]!r} leaves the page" for link in links if not link.startswith("#")]
    if not os.path.isfile(verdict):
        problems.append(f"verdict: {verdict} is not a file")
    else:
        heading = open(verdict, encoding="utf-8").readline().rstrip("\n")
        if heading != ("# Blessed" if summary["blessed"] else "# Not blessed"):
            problems.append(f"verdict: heading {heading!r}, but the summary's blessed is {summary['blessed']}")
    metrics = outputs["metrics"].properties
    for name in SUMMARY_METRICS:
        if not (isinstance(metrics.get(name), float) and math.isclose(metrics[name], summary["metrics"][name],
                                                                       rel_tol=1e-6)):
            problems.append(f"metrics: {name} {metrics.get(name)!r}, the summary's {summary['metrics'][name]!r}")
    confusion = outputs["classification_metrics"].properties.get("confusionMatrix") or {}
    row_sums = [sum(row["row"]) for row in confusion.get("rows", [])]
    by_label = summary["metrics_by_label"]
    examples = [by_label[label]["example_count"] for label in sorted(by_label, key=int)]
    if row_sums != examples:
        problems.append(f"classification_metrics: confusion matrix rows sum to {row_sums}, examples per label "
                        f"{examples}")
    return problems


# RunResult's fields that are the record's own, not the summary's.
NOT_IN_SUMMARY = {"pipeline_name", "artifacts", "page_inputs", "execution_properties", "cached_from"}


def summary_fields() -> set[str]:
    return {field.name for field in dataclasses.fields(RunResult)} - NOT_IN_SUMMARY


def evaluator_metric_names() -> set[str]:
    """The Evaluator's metrics as TFMA names them: its config's class names in snake case."""
    return {re.sub(r"(?<=[a-z])(?=[A-Z])", "_", metric.class_name).lower()
            for spec in build_eval_config(0.5).metrics_specs for metric in spec.metrics}


def first_push_summary_problems(summary: dict) -> list[str]:
    """What a first push's summary (`--summary-json`) lacks, whether the run was local or
    compiled: every field of the record's summary, every step, the Evaluator's metrics overall
    and per label, blessed and pushed against no baseline, and its run page written."""
    problems = []
    if set(summary) != summary_fields():
        problems.append(f"fields {sorted(set(summary) ^ summary_fields())} differ from the record's summary")
    if sorted(summary.get("components", {})) != sorted(step.id for step in steps.STEPS):
        problems.append(f"components {sorted(summary.get('components', {}))}, not the pipeline's steps")
    if set(summary.get("metrics", {})) != evaluator_metric_names():
        problems.append(f"metrics {sorted(summary.get('metrics', {}))}, not {sorted(evaluator_metric_names())}")
    labels = {str(label) for label in range(len(features.LABEL_NAMES))}
    by_label = summary.get("metrics_by_label", {})
    if set(by_label) != labels or any(set(metrics) != evaluator_metric_names() for metrics in by_label.values()):
        problems.append(f"metrics_by_label {by_label}: not the Evaluator's metrics for each of {sorted(labels)}")
    if not (summary.get("blessed") and summary.get("pushed_model_dir")):
        problems.append("not blessed and pushed")
    if summary.get("baseline_model") is not None:
        problems.append(f"a baseline {summary['baseline_model']} on a first push")
    if not os.path.isfile(summary.get("run_page") or ""):
        problems.append(f"no run page at {summary.get('run_page')}")
    return problems
