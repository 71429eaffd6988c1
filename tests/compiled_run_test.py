"""The compiled Kubeflow pipeline, run end to end by Kubeflow Pipelines' own local orchestrator.

`python -m pipeline compile-kubeflow --local` writes the demo's spec; `python -m pipeline
run-compiled` runs it with kfp.local (DAG order, placeholders, executor input and output,
artifact passing, runtime parameters), every container task as a subprocess of this
environment (the session's `compiled_runs`, tests/conftest.py): the run pushes a model. The
same spec in the image, where a second model is compared against one already served, is
tests/image_run_test.py's.
"""

import glob
import json
import os

import pytest

from pipeline.cli import exit_status
from support.records import compiled_run_records, first_push_summary_problems, run_page_problems

pytestmark = pytest.mark.e2e
TASKS = {"TfdsExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer", "Evaluator",
         "InfraValidator", "Pusher", "RunPage"}


def test_every_task_of_the_compiled_spec_finished_and_a_model_was_pushed(compiled_runs):
    root, [(result, summary), *_] = compiled_runs
    assert result.returncode == exit_status.PUSHED, result.stdout[-4000:] + result.stderr[-4000:]
    assert set(summary["components"]) == TASKS
    assert {info["status"] for info in summary["components"].values()} == {"complete"}
    for task in TASKS:
        assert f"[pipeline] {task} finished in" in result.stdout
    pushed = summary["pushed_model_dir"]
    assert os.path.dirname(pushed) == str(root / "serving" / "cats_vs_dogs") and os.path.basename(pushed).isdigit()
    assert os.path.isfile(os.path.join(pushed, "saved_model.pb"))
    assert summary["infra_blessed"] is True and "canary batches" in summary["infra_reason"]
    assert first_push_summary_problems(summary) == []  # as tests/pipeline_e2e_test.py's local run


def test_the_run_page_line_names_the_page_the_command_writes(compiled_runs):
    """The command's own page of each run (the RunPage step's, with each task's status and time),
    built from the tasks' artifacts (kfp.local keeps no ML Metadata)."""
    root, runs = compiled_runs
    for result, summary in runs:
        assert summary["run_page"] == str(root / "kfp" / "reports" / summary["run_id"] / "report.html")
        assert os.path.isfile(summary["run_page"])
        assert f"Run page: {summary['run_page']}" in result.stdout.splitlines()


def test_the_run_page_steps_outputs_say_what_the_summary_says(compiled_runs):
    """Each run's RunPage task, as the record holds its outputs: one self-contained HTML page,
    the verdict, the metrics and the confusion matrix agree with the run's summary
    (tests/support/records.py); tests/image_run_test.py expects the same metadata keys."""
    root, runs = compiled_runs
    records = compiled_run_records(root / "kfp")
    assert len(records) == len(runs)
    for record, (_, summary) in zip(records, runs):
        assert summary["components"]["RunPage"]["status"] == "complete"
        assert run_page_problems(record, summary) == [], record.run_id


def test_runtime_parameters_reached_run_fn_and_the_evaluator(compiled_runs):
    root, [(_, summary), *_] = compiled_runs
    with open(os.path.join(summary["pushed_model_dir"], "training_history.json")) as f:
        history = json.load(f)
    assert history["phase"] == [1, 1]  # phase1_epochs=2 and phase2_epochs=0 (the demo's: 10 and 1)

    from tensorflow_model_analysis.writers import eval_config_writer

    [evaluation] = glob.glob(str(root / "kfp" / "*" / "*" / "evaluation"))
    eval_config = eval_config_writer.load_eval_run(evaluation)[0]
    bars = [per_slice.threshold.value_threshold.lower_bound.value
            for spec in eval_config.metrics_specs for metric in spec.metrics
            for per_slice in metric.per_slice_thresholds]
    assert bars == [pytest.approx(0.6)]
