"""The Evaluator's TFMA config measures a model of known accuracy correctly and gates on it."""

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from components import features
from components.evaluator.eval_config import build_eval_config
from components.run_page.outcome import read_metrics
from support.score_model import KNOWN_ACCURACY, LABELS, LOGITS, ScoreModel


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    model_dirs = {}
    for feature in ("logit", "perfect_logit"):
        model = ScoreModel(feature)
        model_dirs[feature] = str(root / feature)
        tf.saved_model.save(model, model_dirs[feature], signatures={features.EXAMPLES_SIGNATURE: model.from_examples})
    data_path = str(root / "test.tfrecord")
    with tf.io.TFRecordWriter(data_path) as writer:
        for logit, label in zip(LOGITS, LABELS):
            example = tf.train.Example(features=tf.train.Features(feature={
                "logit": tf.train.Feature(float_list=tf.train.FloatList(value=[float(logit)])),
                "perfect_logit": tf.train.Feature(float_list=tf.train.FloatList(value=[float(label) - 0.5])),
                features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"jpeg"])),
            }))
            writer.write(example.SerializeToString())
    return root, model_dirs, data_path


def analyze(eval_data, accuracy_bar, baseline="logit"):
    """Evaluates the 70%-accurate model against `baseline`, as TFX's Evaluator does."""
    root, model_dirs, data_path = eval_data
    eval_config = build_eval_config(accuracy_bar)
    [spec] = eval_config.model_specs
    candidate_spec, baseline_spec = eval_config.model_specs.add(), eval_config.model_specs.add()
    candidate_spec.CopyFrom(spec)
    candidate_spec.name = "candidate"
    baseline_spec.CopyFrom(spec)
    baseline_spec.name, baseline_spec.is_baseline = "baseline", True
    del eval_config.model_specs[0]
    models = [
        tfma.default_eval_shared_model(model_dirs["logit"], model_name="candidate", eval_config=eval_config),
        tfma.default_eval_shared_model(model_dirs[baseline], model_name="baseline", eval_config=eval_config),
    ]
    output = str(root / f"out-{accuracy_bar}-{baseline}")
    tfma.run_model_analysis(eval_shared_model=models, eval_config=eval_config,
                            data_location=data_path, output_path=output)
    return output


def test_known_accuracy_is_measured_from_probabilities(eval_data):
    overall, by_label = read_metrics(analyze(eval_data, accuracy_bar=0.5))
    assert overall["binary_accuracy"] == pytest.approx(KNOWN_ACCURACY)
    assert overall["example_count"] == len(LABELS)
    assert set(overall) >= {"auc", "precision", "recall", "binary_crossentropy"}
    # Dogs: 4 of 5 right; cats: 3 of 5 right.
    assert by_label["1"]["binary_accuracy"] == pytest.approx(4 / 5)
    assert by_label["0"]["binary_accuracy"] == pytest.approx(3 / 5)


@pytest.mark.parametrize("bar, passes", [(0.65, True), (0.75, False)])
def test_gate_blesses_only_above_the_bar(eval_data, bar, passes):
    # The baseline is the same model: an equally good model passes the change threshold.
    result = tfma.load_validation_result(analyze(eval_data, accuracy_bar=bar))
    assert result.validation_ok is passes


def test_gate_rejects_a_model_worse_than_the_baseline(eval_data):
    result = tfma.load_validation_result(analyze(eval_data, accuracy_bar=0.5, baseline="perfect_logit"))
    assert not result.validation_ok
