"""The Evaluator's cache key names the served model (`gate_baseline`): it changes when another
model is served, and not when the model served is a candidate the gate blessed (pushed since)."""

import shutil

from tfx.types import standard_artifacts

from components.evaluator import Evaluator, build_eval_config
from components.serving import baseline as baseline_lib
from support.score_model import save_score_model
from tfx import types


def evaluator(serving_dir, **kwargs):
    channel = lambda kind: types.Channel(type=kind)  # noqa: E731
    return Evaluator(examples=channel(standard_artifacts.Examples), model=channel(standard_artifacts.Model),
                     eval_config=build_eval_config(0.5, 0.0), accuracy_bar=0.5, serving_dir=serving_dir, **kwargs)


def test_the_exec_property_names_the_served_version_when_the_pipeline_is_built(tmp_path):
    serving_dir = tmp_path / "serving" / "cats_vs_dogs"
    assert evaluator(str(serving_dir)).exec_properties["gate_baseline"] == ""
    a = save_score_model("logit", str(serving_dir / "1"))
    key_a = evaluator(str(serving_dir)).exec_properties["gate_baseline"]
    assert key_a == f"{a}#{baseline_lib.model_fingerprint(a)}"
    (serving_dir / "5").mkdir()  # broken: not served
    assert evaluator(str(serving_dir)).exec_properties["gate_baseline"] == key_a
    b = save_score_model("perfect_logit", str(serving_dir / "6"))
    assert evaluator(str(serving_dir)).exec_properties["gate_baseline"] == f"{b}#{baseline_lib.model_fingerprint(b)}"
    assert baseline_lib.model_fingerprint(a) != baseline_lib.model_fingerprint(b)


def test_a_served_copy_of_a_blessed_candidate_keeps_the_key_it_was_blessed_under(tmp_path):
    serving_dir = tmp_path / "serving" / "cats_vs_dogs"
    candidate = save_score_model("logit", str(tmp_path / "candidate"))
    save_score_model("perfect_logit", str(serving_dir / "2"))
    key_b = baseline_lib.gate_baseline(str(serving_dir))
    baseline_lib.record_gate_verdict(str(serving_dir), baseline_lib.model_fingerprint(candidate), key_b)
    shutil.copytree(candidate, serving_dir / "3")  # what the Pusher does

    assert baseline_lib.gate_baseline(str(serving_dir)) == key_b
    assert sorted(p.name for p in serving_dir.iterdir()) == ["2", "3"]  # the record lives beside the folder
    assert baseline_lib.gate_record_path(str(serving_dir)) == str(tmp_path / "serving" / ".cats_vs_dogs.gate.json")


def test_remote_serving_folders_and_given_baselines_have_no_build_time_key():
    assert "gate_baseline" not in evaluator("gs://bucket/serving/cats_vs_dogs").exec_properties or \
        evaluator("gs://bucket/serving/cats_vs_dogs").exec_properties["gate_baseline"] is None
