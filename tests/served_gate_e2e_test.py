"""The gate compares against what is served now (issue 25): run 1 pushes A; another model B is
then put in the serving folder as a newer version; run 1's command again re-evaluates A against
B instead of reusing the cached verdict (and pushes A above B); the same command once more,
nothing changed, takes everything from the cache and says that it pushed nothing, which run
made the verdict and which version is served."""

import html
import os
import shutil

import pytest

from conftest import run_demo
from pipeline.cli import exit_status
from pipeline.config.settings import load_profile

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("demo_inputs")]

DEMO = load_profile("demo")
CHEAP = ("--set", "trainer.phase1_epochs=0", "--set", "trainer.phase2_epochs=0",
         "--set", "evaluator.accuracy_bar=0", "--set", "evaluator.max_accuracy_drop=1.0")


def explain(run) -> str:
    return run[0].stdout[-3000:] + run[0].stderr[-3000:]


@pytest.fixture(scope="module")
def gate_runs(tmp_path_factory, pushed_model):
    root = str(tmp_path_factory.mktemp("served_gate"))
    first = run_demo(root, *CHEAP)
    assert first[0].returncode == exit_status.PUSHED, explain(first)
    first_again = run_demo(root, *CHEAP)  # nothing changed yet: everything cached, A served
    a = first[1]["pushed_model_dir"]
    b = os.path.join(os.path.dirname(a), str(int(os.path.basename(a)) + 1))
    shutil.copytree(pushed_model, b)  # another model, served from now on
    second = run_demo(root, *CHEAP)
    third = run_demo(root, *CHEAP)
    return {"a": a, "b": b, "runs": [first, second, third], "first_again": first_again}


def statuses(summary) -> dict:
    return {name: values["status"] for name, values in summary["components"].items()}


def test_run_1_pushes_a_against_no_baseline(gate_runs):
    _, summary = gate_runs["runs"][0]
    assert summary["baseline_model"] is None and summary["pushed_model_dir"] == gate_runs["a"]
    assert summary["evaluated_in_run"] is None and summary["served_now"] == gate_runs["a"]
    assert summary["candidate_served"] is True and summary["skipped_versions"] == []


def test_run_1s_command_again_says_the_model_served_is_its_own_candidate(gate_runs):
    """Everything cached, the verdict run 1's against no baseline; A, pushed by run 1, is served."""
    (_, first), run, summary = gate_runs["runs"][0], *gate_runs["first_again"]
    assert run.returncode == exit_status.PUSHED, explain(gate_runs["first_again"])
    assert set(statuses(summary).values()) == {"cached"}, statuses(summary)
    assert summary["baseline_model"] is None and summary["evaluated_in_run"] == first["run_id"]
    assert summary["served_now"] == gate_runs["a"] and summary["candidate_served"] is True
    lines = run.stdout.splitlines()
    assert (f"Baseline: none (no model was served when run {first['run_id']} evaluated: the accuracy bar alone "
            "decided)") in lines
    assert (f"Pushed model: none by this run (pushed in run {first['run_id']}: {gate_runs['a']}; the version served "
            f"now: {gate_runs['a']}, this run's own candidate)") in lines
    page = html.unescape(open(summary["run_page"]).read())
    assert f"(this run's own candidate, pushed by run {first['run_id']})" in page
    assert "no model served yet" not in run.stdout + page and "no model was being served" not in page


def test_a_newer_model_served_makes_the_same_command_re_evaluate_against_it(gate_runs):
    run, summary = gate_runs["runs"][1]
    assert run.returncode == exit_status.PUSHED, explain(gate_runs["runs"][1])
    components = statuses(summary)
    assert components["Trainer"] == "cached"
    assert components["Evaluator"] == "complete" and components["Pusher"] == "complete"
    assert summary["baseline_model"] == gate_runs["b"] and summary["evaluated_in_run"] is None
    pushed = summary["pushed_model_dir"]
    assert int(os.path.basename(pushed)) > int(os.path.basename(gate_runs["b"]))
    assert summary["served_now"] == pushed and summary["candidate_served"] is True


def test_a_rerun_with_nothing_changed_is_cached_and_says_it_pushed_nothing(gate_runs):
    (_, first), (_, second), (run, summary) = gate_runs["runs"]
    assert set(statuses(summary).values()) == {"cached"}, statuses(summary)
    assert summary["pushed_model_dir"] is None
    assert summary["evaluated_in_run"] == second["run_id"] and summary["baseline_model"] == gate_runs["b"]
    assert summary["pushed_earlier"] == second["pushed_model_dir"] and summary["pushed_in_run"] == second["run_id"]
    assert summary["served_now"] == second["pushed_model_dir"] and summary["candidate_served"] is True
    lines = run.stdout.splitlines()
    assert f"Evaluator: cached, evaluated in run {second['run_id']} against baseline {gate_runs['b']}" in lines
    assert (f"Pushed model: none by this run (pushed in run {second['run_id']}: {second['pushed_model_dir']}; "
            f"the version served now: {second['pushed_model_dir']}, this run's own candidate)") in lines
    page = open(summary["run_page"]).read()
    assert "From the cache: evaluated in run" in page and "Nothing pushed by this run" in page
    assert sorted(os.listdir(os.path.dirname(gate_runs["a"]))) == sorted(
        os.path.basename(path) for path in (gate_runs["a"], gate_runs["b"], second["pushed_model_dir"]))


def test_a_fully_cached_rerun_whose_candidate_is_served_exits_0(gate_runs):
    """Needs pipeline/cli/commands.py `finish` to count a served candidate as pushed."""
    run, _ = gate_runs["runs"][2]
    assert run.returncode == exit_status.PUSHED, explain(gate_runs["runs"][2])
