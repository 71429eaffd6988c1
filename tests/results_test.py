"""One record of what a run did (pipeline/results): a local run's, read from ML Metadata, and
its compiled twin's, read from task outputs as kfp.local returns them, agree field by field.
(The summaries of a real local run and a real compiled run hold the same fields:
tests/pipeline_e2e_test.py and tests/compiled_run_test.py hold each to
tests/support/records.py's first_push_summary_problems.)"""

import json
import os

import pytest

from pipeline.config.settings import load_profile
from pipeline.results import metadata as results_metadata
from conftest import SECOND_RUN_BAR
from support.records import compiled_twin, summary_fields

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
    return local, compiled_twin(local, "twin", parameters={"accuracy_bar": SECOND_RUN_BAR})


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
    assert twin.execution_properties["Evaluator"] == {"accuracy_bar": SECOND_RUN_BAR}


def test_both_records_give_the_same_summary_and_console_lines(local_and_twin):
    local, twin = local_and_twin
    differing = {"run_id", "profile"}
    local_summary, twin_summary = local.summary(), twin.summary()
    assert set(local_summary) == set(twin_summary) == summary_fields()
    assert same({k: v for k, v in twin_summary.items() if k not in differing},
                {k: v for k, v in local_summary.items() if k not in differing})
    assert twin.render().splitlines()[1:] == local.render().splitlines()[1:]
