"""One record of what a run did (pipeline/results): a local run's, read from ML Metadata, and
its compiled twin's, read from task outputs as kfp.local returns them, agree field by field;
so do the summaries of a real local run and a real compiled run of the demo, field for field
in what they hold."""

import dataclasses
import json
import os

import pytest

from pipeline.config.settings import load_profile
from pipeline.results import metadata as results_metadata
from components.run_page.record import RunResult
from support.records import compiled_twin

pytestmark = pytest.mark.e2e

DEMO = load_profile("demo")
OUTCOME_FIELDS = ("metrics", "metrics_by_label", "blessed", "blessing_reason", "baseline_model", "pushed_model_dir",
                  "wall_seconds")


def same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.fixture(scope="module")
def local_and_twin(demo_runs):
    root, [(_, first), (_, second), *_] = demo_runs
    local = results_metadata.from_metadata(os.path.join(root, "pipeline"), DEMO.pipeline_name, "demo",
                                           run_id=second["run_id"])
    return local, compiled_twin(local, "twin", parameters={"accuracy_bar": DEMO.evaluator.accuracy_bar})


def test_a_local_run_and_its_compiled_twin_give_the_same_record(local_and_twin):
    """The second demo run: compared against a baseline, so every outcome field is set."""
    local, twin = local_and_twin
    assert local.baseline_model and local.pushed_model_dir and local.metrics
    for field in OUTCOME_FIELDS:  # as JSON, where TFMA's NaN (an undefined per-label AUC) equals itself
        assert same(getattr(twin, field), getattr(local, field)), field
    assert [(c.name, c.status, c.seconds, c.start) for c in twin.components] == \
        [(c.name, c.status, c.seconds, c.start) for c in local.components]
    assert {key: artifact.uri for key, artifact in twin.artifacts.items()} == \
        {key: artifact.uri for key, artifact in local.artifacts.items()}
    assert twin.execution_properties["Evaluator"] == {"accuracy_bar": DEMO.evaluator.accuracy_bar}


def test_both_records_give_the_same_summary_and_console_lines(local_and_twin):
    local, twin = local_and_twin
    differing = {"run_id", "profile"}
    local_summary, twin_summary = local.summary(), twin.summary()
    assert set(local_summary) == set(twin_summary) == {field.name for field in dataclasses.fields(RunResult)} - {
        "pipeline_name", "artifacts", "page_inputs", "execution_properties", "cached_from"}
    assert same({k: v for k, v in twin_summary.items() if k not in differing},
                {k: v for k, v in local_summary.items() if k not in differing})
    assert twin.render().splitlines()[1:] == local.render().splitlines()[1:]


def test_a_real_local_and_compiled_runs_summaries_hold_the_same_fields(demo_runs, compiled_runs):
    _, [(_, local), *_] = demo_runs
    _, [(_, compiled), *_] = compiled_runs
    assert set(local) == set(compiled)
    assert list(local["components"]) == list(compiled["components"])
    for key in ("metrics", "metrics_by_label"):
        assert set(local[key]) == set(compiled[key]), key
    for summary in (local, compiled):
        assert summary["blessed"] and summary["pushed_model_dir"] and os.path.isfile(summary["run_page"])
        assert summary["baseline_model"] is None  # each the first push of its own serving folder
