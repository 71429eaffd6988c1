"""The Evaluator's executor on tiny data: the model being served is the baseline.

TFX's Evaluator, run through `Executor().Do(...)` with a candidate that is right on 7 of 10
test examples; the serving folder holds no model, a perfect one, or an equally good one.
"""

import os

import pytest
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as keys
from tfx.utils import path_utils, proto_utils

from components import features
from components.evaluator import Evaluator, build_eval_config
from components.evaluator import executor as executor_lib
from eval_config_test import LABELS, LOGITS, ScoreModel
from pipeline.runners import inputs as local_runner
from pipeline.config.settings import demo_profile

ACCURACY_BAR = 0.5  # the candidate's 0.7 passes it


def save_score_model(feature: str, export_dir: str) -> str:
    model = ScoreModel(feature)
    tf.saved_model.save(model, export_dir, signatures={features.EXAMPLES_SIGNATURE: model.from_examples})
    return export_dir


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


def evaluate(tmp_path, test_examples, candidate, served_feature=None):
    """Runs the executor with a serving folder that serves `served_feature`'s model (or none)."""
    serving_dir = tmp_path / "serving_model" / "cats_vs_dogs"
    serving_dir.mkdir(parents=True)
    if served_feature:
        save_score_model("logit", str(serving_dir / "1700000000"))  # an older version
        save_score_model(served_feature, str(serving_dir / "1800000000"))  # the one being served
    (serving_dir / ".1900000000.incomplete").mkdir()  # a push in progress is not served
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
    context = BaseBeamExecutor.Context(beam_pipeline_args=local_runner.beam_args(demo_profile()),
                                       tmp_dir=str(tmp_path / "tmp"), unique_id="evaluator-test")
    executor_lib.Executor(context).Do(
        {keys.EXAMPLES_KEY: [test_examples], keys.MODEL_KEY: [candidate]},
        {keys.EVALUATION_KEY: [evaluation], keys.BLESSING_KEY: [blessing]},
        exec_properties,
    )
    return evaluation, blessing


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


def test_served_version_is_the_highest_number(tmp_path):
    for name in ("9", "10", ".11.incomplete", "notes"):
        (tmp_path / name).mkdir()

    assert executor_lib.served_version(str(tmp_path)) == str(tmp_path / "10")
    assert executor_lib.served_version(str(tmp_path / "missing")) is None
