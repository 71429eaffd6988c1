"""The Evaluator's executor on tiny data: the model being served is the baseline.

TFX's Evaluator, run through `Executor().Do(...)` with a candidate that is right on 7 of 10
test examples; the serving folder holds no model, a perfect one, or an equally good one, and
newer version folders that TF Serving cannot load (empty, a corrupt saved_model.pb), which are
skipped and named; the Pusher then pushes above them.
"""

import json
import os
import shutil

import pytest
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as keys
from tfx.utils import path_utils, proto_utils

from components import features
from components.evaluator import Evaluator, build_eval_config
from components.evaluator import executor as executor_lib
from components.pusher import executor as pusher_executor
from components.serving import baseline as baseline_lib
from components.serving import loadable
from components.serving import versions as versions_lib
from support.score_model import LABELS, LOGITS, save_score_model
from pipeline.beam import arguments as beam_arguments
from pipeline.config.settings import demo_profile

ACCURACY_BAR = 0.5  # the candidate's 0.7 passes it


@pytest.fixture(scope="module")
def test_examples(tmp_path_factory):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path_factory.mktemp("examples"))
    examples.split_names = artifact_utils.encode_split_names(["test"])
    split_dir = artifact_utils.get_split_uri([examples], "test")
    os.makedirs(split_dir)
    with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001")) as writer:
        for logit, label in zip(LOGITS, LABELS):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "logit": tf.train.Feature(float_list=tf.train.FloatList(value=[float(logit)])),
                "perfect_logit": tf.train.Feature(float_list=tf.train.FloatList(value=[float(label) - 0.5])),
                features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"jpeg"])),
            })).SerializeToString())
    return examples


@pytest.fixture(scope="module")
def candidate(tmp_path_factory):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path_factory.mktemp("candidate"))
    save_score_model("logit", path_utils.serving_model_dir(model.uri))
    return model


def break_version(version_dir, kind: str) -> None:
    """A version folder TF Serving cannot load: what an interrupted copy or a hand-made folder leaves."""
    if kind == "empty":
        os.makedirs(version_dir)
    elif kind == "corrupt saved_model.pb":
        save_score_model("logit", str(version_dir))
        (version_dir / "saved_model.pb").write_bytes(b"not a saved model\n" * 64)
    elif kind == "no variables":
        save_score_model("logit", str(version_dir))
        shutil.rmtree(version_dir / "variables")
    else:
        raise ValueError(kind)


def evaluate(tmp_path, test_examples, candidate, served_feature=None, broken=None):
    """Runs the executor with a serving folder that serves `served_feature`'s model (or none)
    and holds the broken versions `broken` ({version: kind}) besides."""
    serving_dir = tmp_path / "serving_model" / "cats_vs_dogs"
    serving_dir.mkdir(parents=True)
    if served_feature:
        save_score_model("logit", str(serving_dir / "1700000000"))  # an older version
        save_score_model(served_feature, str(serving_dir / "1800000000"))  # the one being served
    for version, kind in (broken or {}).items():
        break_version(serving_dir / version, kind)
    (serving_dir / ".1990000000.incomplete").mkdir()  # a push in progress is not served
    component = Evaluator(
        examples=types.Channel(type=standard_artifacts.Examples),
        model=types.Channel(type=standard_artifacts.Model),
        eval_config=build_eval_config(ACCURACY_BAR),
        accuracy_bar=ACCURACY_BAR,
        serving_dir=str(serving_dir),
        example_splits=["test"],
    )
    exec_properties = {
        key: proto_utils.proto_to_json(value) if hasattr(value, "DESCRIPTOR") else value
        for key, value in component.exec_properties.items()
        if value is not None
    }
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(tmp_path / "evaluation"), str(tmp_path / "blessing")
    context = BaseBeamExecutor.Context(beam_pipeline_args=beam_arguments.beam_args(demo_profile()),
                                       tmp_dir=str(tmp_path / "tmp"), unique_id="evaluator-test")
    executor_lib.Executor(context).Do(
        {keys.EXAMPLES_KEY: [test_examples], keys.MODEL_KEY: [candidate]},
        {keys.EVALUATION_KEY: [evaluation], keys.BLESSING_KEY: [blessing]},
        exec_properties,
    )
    return evaluation, blessing


def push(tmp_path, candidate, blessing):
    """The Pusher's executor on the Evaluator's verdict (the InfraValidator's says servable),
    into the same serving folder."""
    infra_blessing = standard_artifacts.InfraBlessing()
    infra_blessing.set_int_custom_property("blessed", 1)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    base = str(tmp_path / "serving_model" / "cats_vs_dogs")
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    pusher_executor.Executor().Do(
        {keys.MODEL_KEY: [candidate], keys.MODEL_BLESSING_KEY: [blessing], keys.INFRA_BLESSING_KEY: [infra_blessing]},
        {keys.PUSHED_MODEL_KEY: [pushed]},
        {keys.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)},
    )
    return pushed


def skipped_versions(blessing):
    return [(item["version"], item["reason"])
            for item in json.loads(blessing.get_string_custom_property(executor_lib.SKIPPED_VERSIONS_PROPERTY))]


def test_with_no_model_served_the_accuracy_bar_alone_decides(tmp_path, test_examples, candidate):
    _, blessing = evaluate(tmp_path, test_examples, candidate)

    assert blessing.get_int_custom_property("blessed") == 1
    assert not blessing.has_custom_property("baseline_model")


def test_a_model_worse_than_the_served_one_is_not_blessed(tmp_path, test_examples, candidate):
    evaluation, blessing = evaluate(tmp_path, test_examples, candidate, served_feature="perfect_logit")

    assert blessing.get_int_custom_property("blessed") == 0
    assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))
    # The newest version, not the older one; no ML Metadata id, which it does not have.
    assert blessing.get_string_custom_property("baseline_model") == str(tmp_path / "serving_model" / "cats_vs_dogs" / "1800000000")
    assert not blessing.has_custom_property("baseline_model_id")


def test_a_model_as_good_as_the_served_one_is_blessed(tmp_path, test_examples, candidate):
    evaluation, blessing = evaluate(tmp_path, test_examples, candidate, served_feature="logit")

    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.has_custom_property("baseline_model")


@pytest.mark.parametrize("kind, reason", [
    ("empty", "empty folder (no saved_model.pb)"),
    ("corrupt saved_model.pb", "saved_model.pb is corrupt (it does not parse as a SavedModel, 1,152 bytes)"),
], ids=["empty", "corrupt-saved-model"])
def test_a_broken_newest_version_is_skipped_named_and_pushed_above(tmp_path, test_examples, candidate, capsys,
                                                                   kind, reason):
    """The run completes: the baseline is the newest good version, the broken one is named on
    the console and on the blessing, and the new version goes above it (so TF Serving's
    latest policy serves it, and the next run compares against it)."""
    serving_dir = tmp_path / "serving_model" / "cats_vs_dogs"
    _, blessing = evaluate(tmp_path, test_examples, candidate, served_feature="logit", broken={"1900000000": kind})

    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_string_custom_property("baseline_model") == str(serving_dir / "1800000000")
    assert skipped_versions(blessing) == [("1900000000", reason)]
    console = capsys.readouterr().out.splitlines()
    assert [line for line in console if line.startswith("[evaluator]")] == [
        f"[evaluator] skipping serving version 1900000000: {reason}"]

    pushed = push(tmp_path, candidate, blessing)
    version = pushed.get_string_custom_property("pushed_version")
    assert int(version) > 1900000000
    assert [number for number, _ in versions_lib.versions(str(serving_dir))][:2] == [int(version), 1900000000]
    assert baseline_lib.served_version(str(serving_dir)) == str(serving_dir / version)


def test_the_newest_good_version_below_broken_ones_is_the_baseline_that_decides(tmp_path, test_examples, candidate):
    """Two broken versions above a perfect model: the candidate is compared against the perfect
    one (and loses), not judged by the accuracy bar alone."""
    _, blessing = evaluate(tmp_path, test_examples, candidate, served_feature="perfect_logit",
                           broken={"1900000000": "no variables", "1950000000": "empty"})

    assert blessing.get_int_custom_property("blessed") == 0
    assert blessing.get_string_custom_property("baseline_model") == str(
        tmp_path / "serving_model" / "cats_vs_dogs" / "1800000000")
    assert skipped_versions(blessing) == [("1950000000", "empty folder (no saved_model.pb)"),
                                          ("1900000000", "no variables folder")]


def test_only_broken_versions_leave_the_accuracy_bar_alone_to_decide(tmp_path, test_examples, candidate):
    _, blessing = evaluate(tmp_path, test_examples, candidate, broken={"1900000000": "empty"})

    assert blessing.get_int_custom_property("blessed") == 1
    assert not blessing.has_custom_property("baseline_model")
    assert skipped_versions(blessing) == [("1900000000", "empty folder (no saved_model.pb)")]


@pytest.fixture(scope="module")
def good_version(tmp_path_factory):
    return save_score_model("logit", str(tmp_path_factory.mktemp("good") / "1"))


def damaged_copy(good_version, tmp_path, damage):
    version_dir = tmp_path / "7"
    shutil.copytree(good_version, version_dir)
    damage(version_dir)
    return str(version_dir)


def _write(relative_path, data):
    return lambda version_dir: (version_dir / relative_path).write_bytes(data)


def _remove(relative_path):
    return lambda version_dir: os.remove(version_dir / relative_path)


@pytest.mark.parametrize("damage, reason", [
    (lambda version_dir: None, None),
    (_remove("saved_model.pb"), "no saved_model.pb"),
    (_write("saved_model.pb", b"\xff" * 40), "saved_model.pb is corrupt (it does not parse as a SavedModel, 40 bytes)"),
    (_write("saved_model.pb", b""), "saved_model.pb has no meta graph tagged 'serve'"),
    (_remove("variables/variables.index"), "no variables/variables.index"),
    (_write("variables/variables.index", b"garbage"), "variables/variables.index is corrupt"),
    (_remove("variables/variables.data-00000-of-00001"), "no variables/variables.data-* file"),
    (lambda version_dir: os.rename(version_dir / "variables/variables.data-00000-of-00001",
                                   version_dir / "variables/variables.data-00001-of-00002"),
     "missing variables/variables.data-00000-of-00002"),
], ids=["good", "no-pb", "corrupt-pb", "empty-pb", "no-index", "corrupt-index", "no-data", "missing-shard"])
def test_unloadable_reason_names_what_is_wrong(good_version, tmp_path, damage, reason):
    version_dir = damaged_copy(good_version, tmp_path, damage)
    found = loadable.unloadable_reason(version_dir, ("from_examples",))
    assert found == reason if reason is None else found.startswith(reason), found


def test_a_version_without_the_signature_tfma_calls_is_skipped(good_version):
    assert loadable.unloadable_reason(good_version, ("from_examples",)) is None
    assert loadable.unloadable_reason(good_version, ("no_such_signature",)) == (
        "the SavedModel has no signature 'no_such_signature', which the Evaluator calls")


def test_versions_are_what_tf_serving_counts_and_the_newest_loadable_one_is_served(good_version, tmp_path):
    shutil.copytree(good_version, tmp_path / "5")
    shutil.copytree(good_version, tmp_path / "-1")
    (tmp_path / "7").mkdir()  # empty
    (tmp_path / " 8 ").mkdir()  # TF Serving reads version 8 from this name too
    (tmp_path / " 8 " / "saved_model.pb").write_bytes(b"\xff")
    (tmp_path / "9").write_text("a file")
    for name in ("notes", ".10.incomplete", "11a", "1e3", "99999999999999999999"):  # no versions
        (tmp_path / name).mkdir()

    baseline = baseline_lib.find_baseline(str(tmp_path))

    assert baseline.path == str(tmp_path / "5")
    assert [(skipped.version, skipped.reason.split(" (")[0]) for skipped in baseline.skipped] == [
        ("9", "not a folder"), ("8", "saved_model.pb is corrupt"), ("7", "empty folder")]
    assert baseline_lib.served_version(str(tmp_path)) == str(tmp_path / "5")
    assert baseline_lib.find_baseline(str(tmp_path / "missing")) == baseline_lib.Baseline(path=None)
