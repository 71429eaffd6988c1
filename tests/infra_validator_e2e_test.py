"""A demo run whose candidate Python loads but TF Serving's loader cannot (the former tf.Module
export, made by a Trainer run_fn of the tests') is stopped by the InfraValidator: the Evaluator
blesses it (no bar), nothing is pushed, the run exits with its own status, and the summary and
the run page give the loader's reason."""

import json
import os
import subprocess
import sys

import pytest

from components.config import PipelineConfig
from pipeline.cli import exit_status

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("demo_inputs")]

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
# The CLI with the Trainer's user code swapped, as a user names their own run_fn.
CLI_WITH_FORMER_EXPORT = ("import sys; import pipeline.pipeline as wiring; "
                          "wiring.RUN_FN = 'support.module_export.run_fn'; "
                          "from pipeline.cli import main; sys.exit(main.main(sys.argv[1:]))")


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("former_export")
    summary_path = root / "summary.json"
    result = subprocess.run(
        [sys.executable, "-c", CLI_WITH_FORMER_EXPORT, "run", "--profile", "demo",
         "--pipeline-root", str(root / "pipeline"), "--serving-dir", str(root / "serving"),
         "--set", "evaluator.accuracy_bar=0", "--summary-json", str(summary_path)],
        cwd=TESTS_DIR, capture_output=True, text=True, timeout=1500)
    summary = json.load(open(summary_path)) if summary_path.exists() else None
    return root, result, summary


def test_the_run_exits_with_its_own_status_and_pushes_nothing(stopped_run):
    root, result, summary = stopped_run

    assert result.returncode == exit_status.NOT_SERVABLE, result.stdout[-3000:] + result.stderr[-5000:]
    assert summary["blessed"] is True  # the Evaluator passed it: only the InfraValidator stopped it
    assert summary["infra_blessed"] is False and summary["pushed_model_dir"] is None
    assert summary["components"]["Pusher"]["status"] == "complete"
    model_folder = root / "serving" / PipelineConfig.model_name
    assert not model_folder.exists() or not os.listdir(model_folder)


def test_the_summary_and_the_page_give_the_loaders_reason(stopped_run):
    _, result, summary = stopped_run

    assert "Could not find variable" in summary["infra_reason"]
    assert "Serving check: FAILED (warm-up request 1 (1 images) (serving_default) failed" in result.stdout
    assert "not servable" in result.stderr
    with open(summary["run_page"]) as page:
        html = page.read()
    assert 'id="serving-check"' in html and "Could not find variable" in html
