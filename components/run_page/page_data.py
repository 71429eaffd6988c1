"""What a run's page shows, read back from the artifacts TFX wrote for it.

ML Metadata gives the run's executions and artifacts; from those: ExampleGen's examples and
StatisticsGen's statistics (examples per split and label), Transform's output (a few
training images), the Trainer's training_history.json and TensorBoard logs (curves, seconds
per epoch), TFMA's evaluation (metrics, baseline, change), the blessing, the InfraValidator's requests
and the push. The one
computation of its own is running the trained model over the test split's examples (about
2 s on the demo, most of it loading the SavedModel) for the images it gets most confidently
wrong and the ROC curve, which TFMA's output does not keep; a local run's page, written in the
process that ran the RunPage step, reuses the step's.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import os
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorflow.core.util import event_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from components import features
from components.infra_validator import executor as infra_executor
from components.serving import tfrecords
from data.sample_archive import NUM_CORRUPT_ENTRIES
from components.run_page import outcome as evaluation_lib
from components.run_page import training as training_results
from components.run_page.record import Artifact, RunResult

MAX_ERRORS = 16
NUM_SAMPLES = 8
# Test examples run through the model for the errors and the ROC curve: the whole split up
# to this many (the demo's is 90, the full profile's about 2,300).
MAX_PREDICTED = 4096
PREDICT_BATCH = 64
THUMBNAIL_SIDE = 128


@dataclasses.dataclass
class WrongPrediction:
    """A test image the model got wrong."""

    thumbnail: bytes  # JPEG
    label: str
    predicted: str
    probability: float  # of the positive label (dog)
    file_name: str


@dataclasses.dataclass
class PageData:
    """What the page shows: the run's record, and what the page reads from its artifacts
    besides (see `from_result`)."""

    result: RunResult
    # {"trainer.phase1_epochs": (20, 3), ...}: the run's config where it differs from its
    # profile, as (the profile's value, the run's).
    config_changes: dict[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict)
    label_names: Sequence[str] = features.LABEL_NAMES
    # {split: {label name: examples}}, for the splits StatisticsGen counted.
    split_counts: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    split_sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_files: Optional[str] = None  # a sentence: how many corrupt files were skipped, by whom
    samples: list[tuple[bytes, str]] = dataclasses.field(default_factory=list)  # (PNG, label name)
    history: Optional[dict] = None  # training_history.json
    epoch_seconds: dict[int, float] = dataclasses.field(default_factory=dict)  # 1-based epoch -> s
    baseline_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    metric_changes: dict[str, float] = dataclasses.field(default_factory=dict)
    accuracy_bar: Optional[float] = None
    max_accuracy_drop: Optional[float] = None
    # The model's probabilities on the test split (labels as 0/1), for the ROC curve.
    test_labels: list[int] = dataclasses.field(default_factory=list)
    test_probabilities: list[float] = dataclasses.field(default_factory=list)
    test_split_size: Optional[int] = None
    errors: list[WrongPrediction] = dataclasses.field(default_factory=list)
    num_wrong: int = 0
    # The InfraValidator's requests: [{"name", "passed", "detail", "seconds"}] (validation.json).
    serving_checks: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def model_serving_dir(self) -> Optional[str]:
        """The Pusher's folder for this model (TF Serving's base path)."""
        served = (self.result.pushed_model_dir or self.result.pushed_earlier or self.result.served_now
                  or self.result.baseline_model)
        return os.path.dirname(served) if served else None


def from_result(result: RunResult, config_changes: Optional[dict[str, tuple[Any, Any]]] = None) -> PageData:
    """The page of a run: its record, and the rest from the artifacts its RunPage step takes
    (`result.page_inputs`). `config_changes`: {`--set` key: (the profile's value, the run's)}."""
    data = PageData(result=result, config_changes=dict(config_changes or {}))
    inputs = result.page_inputs
    examples = inputs.get("examples")
    read_data(data, examples, inputs.get("statistics"), inputs.get("transformed_examples"))
    model = inputs.get("model")
    read_training(data, model, inputs.get("model_run"))
    read_evaluation(data, inputs.get("evaluation"))
    data.serving_checks = serving_checks(inputs.get("infra_blessing"))
    if model is not None and examples is not None:
        read_predictions(data, training_results.serving_model_dir(model.uri), split_files(examples.uri, "test"))
    return data


def split_files(examples_uri: str, split: str) -> list[str]:
    return sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))


def read_data(data: PageData, examples: Optional[Artifact], statistics: Optional[Artifact],
              transformed: Optional[Artifact]) -> None:
    """Examples per split and label, the corrupt files skipped, a few transformed images."""
    if examples is not None:
        properties = examples.properties
        data.label_names = tuple(json.loads(properties.get("label_names") or "null") or features.LABEL_NAMES)
        data.split_sizes = {k: int(v) for k, v in json.loads(properties.get("split_sizes") or "{}").items()}
        data.skipped_files = skipped_files_sentence(properties)
        data.test_split_size = data.split_sizes.get("test")
    if statistics is not None:
        for split in data.split_sizes or ("train", "eval", "test"):
            counts = label_counts(statistics.uri, split, data.label_names)
            if counts:
                data.split_counts[split] = counts
    if transformed is not None:
        data.samples = transformed_samples(split_files(transformed.uri, "train"), data.label_names)


def skipped_files_sentence(properties: dict[str, Any]) -> Optional[str]:
    if properties.get("source") == "tfds":
        return (f"{NUM_CORRUPT_ENTRIES:,} corrupt files skipped by TFDS's cats_vs_dogs builder when it prepared the "
                "data (it stops unless it skips exactly that many).")
    if "num_skipped_files" in properties:
        return f"{int(properties['num_skipped_files']):,} files skipped that are not decodable images."
    return None


def label_counts(statistics_uri: str, split: str, label_names: Sequence[str]) -> dict[str, int]:
    """Examples per label from StatisticsGen's statistics: the labels are 0/1, so the label's
    mean times its count is the number of 1s."""
    path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
    if not tf.io.gfile.exists(path):
        return {}
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    with tf.io.gfile.GFile(path, "rb") as f:
        statistics.ParseFromString(f.read())
    for dataset in statistics.datasets:
        for feature in dataset.features:
            if list(feature.path.step) == [features.LABEL_KEY] and feature.HasField("num_stats"):
                count = feature.num_stats.common_stats.num_non_missing
                ones = int(round(feature.num_stats.mean * count))
                return {label_names[0]: int(count) - ones, label_names[1]: ones}
    return {}


def transformed_samples(files: list[str], label_names: Sequence[str],
                        count: int = NUM_SAMPLES) -> list[tuple[bytes, str]]:
    """The first training images as Transform wrote them (raw uint8 pixels), as PNGs."""
    if not files:
        return []
    samples = []
    for record in tfrecords.dataset(files).take(count):
        example = tf.train.Example.FromString(record.numpy())
        pixels = example.features.feature[features.TRANSFORMED_IMAGE_KEY].bytes_list.value[0]
        label = example.features.feature[features.TRANSFORMED_LABEL_KEY].int64_list.value[0]
        side = int(round(math.sqrt(len(pixels) / 3)))
        image = Image.fromarray(np.frombuffer(pixels, np.uint8).reshape(side, side, 3))
        samples.append((encode_image(image, "PNG"), label_names[label]))
    return samples


def read_training(data: PageData, model: Optional[Artifact], model_run: Optional[Artifact]) -> None:
    data.history = training_results.read_history(model)
    if model_run is not None:
        data.epoch_seconds = epoch_seconds(model_run.uri)


def epoch_seconds(model_run_uri: str) -> dict[int, float]:
    """Seconds of each epoch (validation included) from Keras's TensorBoard logs: one file per
    fit, opened as it begins (its first event; then the model's summary, to the microsecond),
    each epoch's summary written as the epoch ends."""
    seconds: dict[int, float] = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(model_run_uri, "train", "events.out.tfevents.*"))):
        previous = None
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            tags = {value.tag for value in event.summary.value}
            if event.HasField("file_version") or "keras" in tags:
                previous = event.wall_time
            elif "epoch_loss" in tags and previous is not None:
                seconds[event.step + 1] = event.wall_time - previous
                previous = event.wall_time
    return seconds


def read_evaluation(data: PageData, evaluation: Optional[Artifact]) -> None:
    """The gate as TFMA ran it (the evaluation's own eval_config: a runtime parameter's value
    included), the baseline's metrics and the change against them."""
    if evaluation is not None:
        data.accuracy_bar, data.max_accuracy_drop = evaluation_lib.gate_bounds(evaluation.uri)
        data.baseline_metrics, data.metric_changes = evaluation_lib.baseline_and_changes(evaluation.uri)


def serving_checks(blessing: Optional[Artifact]) -> list[dict[str, Any]]:
    """Each request the InfraValidator sent and how it went ([] when it did not run)."""
    path = os.path.join(blessing.uri, infra_executor.DETAILS_FILE) if blessing else None
    if not path or not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        return list(json.load(f).get("checks", []))


def read_predictions(data: PageData, model_dir: str, test_files: list[str]) -> None:
    """The probabilities for the ROC curve and the most confident mistakes (only their examples
    are kept), from the model's predictions over the test split."""
    if not test_files or not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        return
    fingerprint = saved_model_fingerprint(model_dir)
    predict = test_predictions if fingerprint else test_predictions.__wrapped__
    labels, probabilities, wrong = predict(model_dir, tuple(test_files), fingerprint)
    data.test_labels += labels
    data.test_probabilities += probabilities
    data.num_wrong = len(wrong)
    data.errors = [
        WrongPrediction(thumbnail=thumbnail(image), label=data.label_names[label],
                        predicted=data.label_names[int(probability > 0.5)], probability=probability, file_name=name)
        for _, label, probability, image, name in wrong[:MAX_ERRORS]
    ]


def saved_model_fingerprint(model_dir: str) -> Optional[str]:
    """The SavedModel's fingerprint (the saved_model.pb's checksum and the variables'); None
    without one."""
    try:
        fingerprint = tf.saved_model.experimental.read_fingerprint(model_dir)
        return f"{fingerprint.saved_model_checksum}/{fingerprint.singleprint()}"
    except (tf.errors.OpError, ValueError, RuntimeError):
        return None


@functools.lru_cache(maxsize=2)
def test_predictions(model_dir: str, test_files: tuple[str, ...],
                     fingerprint: Optional[str]) -> tuple[tuple[int, ...], tuple[float, ...], tuple[tuple, ...]]:
    """Runs the model's examples signature (the one TFMA called) over the test split: (labels,
    probabilities, the mistakes most confident first as (confidence, label, probability, image,
    file name)). Kept for the process, keyed on the model's folder and fingerprint: a local
    run's page, written after the pipeline, reuses what its RunPage step computed."""
    predict = tf.saved_model.load(model_dir).signatures[features.EXAMPLES_SIGNATURE]
    spec = {features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
            features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
            features.FILENAME_KEY: tf.io.FixedLenFeature([], tf.string, default_value="")}
    labels, probabilities, wrong = [], [], []
    for batch in tfrecords.dataset(list(test_files)).take(MAX_PREDICTED).batch(PREDICT_BATCH):
        parsed = {key: value.numpy() for key, value in tf.io.parse_example(batch, spec).items()}
        batch_probabilities = predict(**{features.EXAMPLES_INPUT_KEY: batch})[features.PROBABILITY_KEY].numpy().tolist()
        batch_labels = parsed[features.LABEL_KEY].tolist()
        for i, (label, probability) in enumerate(zip(batch_labels, batch_probabilities)):
            if int(probability > 0.5) != label:
                wrong.append((abs(probability - 0.5), label, probability, parsed[features.IMAGE_KEY][i],
                              parsed[features.FILENAME_KEY][i].decode("utf-8", "replace")))
        labels += batch_labels
        probabilities += batch_probabilities
    wrong.sort(key=lambda mistake: -mistake[0])
    return tuple(labels), tuple(probabilities), tuple(wrong)


def thumbnail(image_bytes: bytes) -> bytes:
    image = Image.open(io.BytesIO(image_bytes))
    image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # JPEG: decode at a reduced size
    image = image.convert("RGB")
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return encode_image(image, "JPEG")


def encode_image(image: Image.Image, image_format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **({"quality": 85} if image_format == "JPEG" else {}))
    return out.getvalue()
