"""What a run's page shows, read back from the artifacts TFX wrote for it.

ML Metadata gives the run's executions and artifacts; from those: ExampleGen's examples and
StatisticsGen's statistics (examples per split and label), Transform's output (a few
training images), the Trainer's training_history.json and TensorBoard logs (curves, seconds
per epoch), TFMA's evaluation (metrics, baseline, change), the blessing and the push. The one
computation of its own is running the trained model over the test split's examples (about
2 s on the demo, most of it loading the SavedModel) for the images it gets most confidently
wrong and the ROC curve, which TFMA's output does not keep.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from PIL import Image
from tensorflow.core.util import event_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

from components import features
from components.trainer import history as history_lib
from components.trainer import tfrecords
from data.sample_archive import NUM_CORRUPT_ENTRIES
from pipeline import config as config_lib
from pipeline import report, run_page

MAX_ERRORS = 16
NUM_SAMPLES = 8
# Test examples run through the model for the errors and the ROC curve: the whole split up
# to this many (the demo's is 90, the full profile's about 2,300).
MAX_PREDICTED = 4096
PREDICT_BATCH = 64
THUMBNAIL_SIDE = 128
_STATUS_WORDS = {metadata_store_pb2.Execution.COMPLETE: "ran", metadata_store_pb2.Execution.CACHED: "cached"}
_SUMMARY_STATUS_WORDS = {"complete": "ran"}
# The compiled spec's runtime parameters, by the component that takes each (pipeline.pipeline).
_RUNTIME_PARAMETERS = {"phase1_epochs": "Trainer", "phase2_epochs": "Trainer", "phase1_learning_rate": "Trainer",
                       "phase2_learning_rate": "Trainer", "accuracy_bar": "Evaluator"}


class NoRun(LookupError):
    """The pipeline root holds no (such) run; the message says what was looked for."""


@dataclasses.dataclass
class Component:
    name: str
    status: str  # "ran", "cached", "failed", "running", ...
    seconds: float
    # Seconds after the run's first execution started (ML Metadata); None when unknown.
    start: Optional[float] = None


@dataclasses.dataclass
class WrongPrediction:
    """A test image the model got wrong."""

    thumbnail: bytes  # JPEG
    label: str
    predicted: str
    probability: float  # of the positive label (dog)
    file_name: str


@dataclasses.dataclass
class Artifact:
    """One output of a component: where it is and the properties recorded with it."""

    uri: str
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RunRecord:
    """What a run left behind, whichever runner ran it (see from_metadata, from_task_outputs)."""

    run_id: str
    components: list[Component]
    wall_seconds: Optional[float]
    artifacts: dict[tuple[str, str], Artifact]  # by (component, output key), e.g. ("Trainer", "model")
    execution_properties: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # by component

    def output(self, component: str, key: str) -> Optional[Artifact]:
        return self.artifacts.get((component, key))


# The outputs the page reads, by (component, output key), with their ML Metadata types.
PAGE_OUTPUTS = {
    ("TfdsExampleGen", "examples"): "Examples",
    ("StatisticsGen", "statistics"): "ExampleStatistics",
    ("Transform", "transformed_examples"): "Examples",
    ("Trainer", "model"): "Model",
    ("Trainer", "model_run"): "ModelRun",
    ("Evaluator", "evaluation"): "ModelEvaluation",
    ("Evaluator", "blessing"): "ModelBlessing",
    ("Pusher", "pushed_model"): "PushedModel",
}


@dataclasses.dataclass
class PageData:
    """What the page shows, gathered from the run's artifacts (see `collect`)."""

    pipeline_name: str
    run_id: str
    profile: str
    components: list[Component]
    wall_seconds: Optional[float] = None
    # {"trainer.phase1_epochs": 3, ...}: the run's config where it differs from the profile.
    changed_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    label_names: Sequence[str] = features.LABEL_NAMES
    # {split: {label name: examples}}, for the splits StatisticsGen counted.
    split_counts: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    split_sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_files: Optional[str] = None  # a sentence: how many corrupt files were skipped, by whom
    samples: list[tuple[bytes, str]] = dataclasses.field(default_factory=list)  # (PNG, label name)
    history: Optional[dict] = None  # training_history.json
    epoch_seconds: dict[int, float] = dataclasses.field(default_factory=dict)  # 1-based epoch -> s
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    metrics_by_label: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # by label index
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
    blessed: bool = False
    blessing_reason: str = "the Evaluator did not run"
    baseline_model: Optional[str] = None
    pushed_model_dir: Optional[str] = None
    model_serving_dir: Optional[str] = None  # the Pusher's folder for this model (TF Serving's base path)


def metadata_path(pipeline_root: str) -> str:
    return os.path.join(os.path.abspath(pipeline_root), "metadata", "metadata.sqlite")


def collect(pipeline_root: str, pipeline_name: str, run_id: Optional[str] = None,
            summary: Optional[report.RunReport] = None, profile: Optional[str] = None,
            changed_config: Optional[dict] = None) -> PageData:
    """Everything the page of a local run (the summary's, else the latest) shows."""
    record = from_metadata(pipeline_root, pipeline_name, run_id, summary)
    return page_data(record, pipeline_name, summary, profile, changed_config)


def from_metadata(pipeline_root: str, pipeline_name: str, run_id: Optional[str] = None,
                  summary: Optional[report.RunReport] = None) -> RunRecord:
    """A run as ML Metadata recorded it: executions (states, times, properties) and outputs."""
    store = open_run_store(pipeline_root)
    run_id = run_id or (summary.run_id if summary else None) or report.latest_run_id(store, pipeline_name)
    if run_id is None:
        raise NoRun(f"no run of {pipeline_name} in {metadata_path(pipeline_root)}")
    executions = {node: found[-1] for node, found in report.run_executions(store, run_id).items()}
    if not executions:
        raise NoRun(f"no run {run_id} in {metadata_path(pipeline_root)}")
    artifacts = {}
    for (node, key), type_name in PAGE_OUTPUTS.items():
        found = report.artifacts_of_type(store, [executions[node]], type_name) if node in executions else []
        if found:
            artifacts[(node, key)] = Artifact(found[-1].uri, _properties(found[-1]))
    wall_seconds = summary.wall_seconds if summary and summary.wall_seconds else wall_seconds_of(executions)
    return RunRecord(run_id, components_of(executions, summary), wall_seconds, artifacts,
                     {node: _properties(execution) for node, execution in executions.items()})


def from_task_outputs(run_id: str, task_outputs: dict[str, dict[str, Any]], summary: report.RunReport,
                      parameters: Optional[dict[str, Any]] = None) -> RunRecord:
    """A run of the compiled spec (kfp.local): each task's output artifacts (objects with a
    local `uri` and a `metadata` dict, as kfp.local returns them), durations from the summary,
    the tunables from the run's parameters."""
    artifacts = {}
    for task, outputs in task_outputs.items():
        for key, output in outputs.items():
            if (task, key) in PAGE_OUTPUTS:
                artifacts[(task, key)] = Artifact(output.uri, dict(getattr(output, "metadata", None) or {}))
    components = [Component(name, _SUMMARY_STATUS_WORDS.get(info["status"], info["status"]), float(info["seconds"]))
                  for name, info in summary.components.items()]
    properties: dict[str, dict[str, Any]] = {}
    for name, value in (parameters or {}).items():
        component = _RUNTIME_PARAMETERS.get(name)
        if component:
            properties.setdefault(component, {})[name] = value
    return RunRecord(run_id, components, summary.wall_seconds or None, artifacts, properties)


def page_data(record: RunRecord, pipeline_name: str, summary: Optional[report.RunReport] = None,
              profile: Optional[str] = None, changed_config: Optional[dict] = None) -> PageData:
    """What the summary and the caller know is taken from them; the rest, and all of it
    without them, from the run's artifacts."""
    profile = profile or (summary.profile if summary else None) or profile_of(pipeline_name)
    data = PageData(pipeline_name=pipeline_name, run_id=record.run_id, profile=profile,
                    components=record.components, wall_seconds=record.wall_seconds)
    data.changed_config = changed_config if changed_config is not None else changed_from_profile(
        recorded_config(record.execution_properties), profile)
    examples = record.output("TfdsExampleGen", "examples")
    read_data(data, examples, record.output("StatisticsGen", "statistics"),
              record.output("Transform", "transformed_examples"))
    model = record.output("Trainer", "model")
    read_training(data, model, record.output("Trainer", "model_run"))
    evaluation = record.output("Evaluator", "evaluation")
    read_evaluation(data, record.execution_properties.get("Evaluator", {}), evaluation, summary)
    read_verdict(data, record.output("Evaluator", "blessing"), evaluation, record.output("Pusher", "pushed_model"),
                 summary)
    if model is not None and examples is not None:
        read_predictions(data, serving_model_dir(model.uri), split_files(examples.uri, "test"))
    return data


def open_run_store(pipeline_root: str):
    path = metadata_path(pipeline_root)
    if not os.path.exists(path):
        raise NoRun(f"no ML Metadata at {path}: no pipeline has run with the root {pipeline_root}")
    return report.open_store(path)


def profile_of(pipeline_name: str) -> str:
    """The profile whose pipeline has this name ("unknown" when none has)."""
    for name, make in sorted(config_lib.PROFILES.items()):
        if make().pipeline_name == pipeline_name:
            return name
    return "unknown"


def components_of(executions: dict, summary: Optional[report.RunReport]) -> list[Component]:
    """Status and duration of each component: the summary's when given (measured by the
    runner), ML Metadata's otherwise; start times, and so the order, from ML Metadata."""
    started = min((e.create_time_since_epoch for e in executions.values()), default=0)
    components = []
    names = list(summary.components) if summary else list(executions)
    never = float("inf")  # components without an execution (not run) go last
    names.sort(key=lambda n: executions[n].create_time_since_epoch if n in executions else never)
    for name in names:
        execution = executions.get(name)
        start = (execution.create_time_since_epoch - started) / 1000 if execution else None
        if summary:
            info = summary.components[name]
            status, seconds = _SUMMARY_STATUS_WORDS.get(info["status"], info["status"]), float(info["seconds"])
        else:
            status = _STATUS_WORDS.get(execution.last_known_state) or \
                metadata_store_pb2.Execution.State.Name(execution.last_known_state).lower()
            seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
        components.append(Component(name, status, seconds, start))
    return components


def wall_seconds_of(executions: dict) -> float:
    """From the first execution's start to the last one's end, as ML Metadata recorded them."""
    first = min(e.create_time_since_epoch for e in executions.values())
    last = max(e.last_update_time_since_epoch for e in executions.values())
    return (last - first) / 1000


def _is_one(value: Any) -> bool:
    """An int property set to 1 (KFP's metadata may carry it as a float or a string)."""
    try:
        return value is not None and float(value) == 1
    except (TypeError, ValueError):
        return False


def _properties(execution_or_artifact) -> dict[str, Any]:
    """ML Metadata's custom properties as plain values."""
    values = {}
    for key, value in execution_or_artifact.custom_properties.items():
        kind = value.WhichOneof("value")
        values[key] = getattr(value, kind) if kind in ("int_value", "double_value", "string_value") else None
    return values


def recorded_config(execution_properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The config fields the run's executions recorded, by `--set` key."""
    values: dict[str, Any] = {}
    trainer = execution_properties.get("Trainer", {})
    for key, value in json.loads(trainer.get("custom_config") or "{}").items():
        values[f"trainer.{key}"] = value
    for key in ("phase1_epochs", "phase2_epochs", "phase1_learning_rate", "phase2_learning_rate"):
        if key in trainer:
            values[f"trainer.{key}"] = trainer[key]
    evaluator = execution_properties.get("Evaluator", {})
    if "accuracy_bar" in evaluator:
        values["evaluator.accuracy_bar"] = evaluator["accuracy_bar"]
    drop = max_accuracy_drop(evaluator.get("eval_config"))
    if drop is not None:
        values["evaluator.max_accuracy_drop"] = drop
    example_gen = execution_properties.get("TfdsExampleGen", {})
    for split in json.loads(example_gen.get("input_config") or "{}").get("splits", []):
        values[f"data.{split['name']}_split"] = split["pattern"]
    for key in ("source", "archive", "folder"):
        if example_gen.get(key):
            values[f"data.{key}"] = example_gen[key]
    for key in ("gzip_output", "validate_checksum"):
        if key in example_gen:
            values[f"data.{key}"] = str(example_gen[key]).lower() in ("true", "1")
    return values


def max_accuracy_drop(eval_config_json: Optional[str]) -> Optional[float]:
    """The drop against the baseline the gate allows, from the Evaluator's eval_config (whose
    bound is -(drop + 1e-9): TFMA's change threshold is exclusive)."""
    if not eval_config_json:
        return None
    for spec in json.loads(eval_config_json).get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            for per_slice in metric.get("per_slice_thresholds", []):
                absolute = per_slice.get("threshold", {}).get("change_threshold", {}).get("absolute")
                if absolute is not None:
                    return round(-float(absolute) - 1e-9, 6)
    return None


def changed_from_profile(recorded: dict[str, Any], profile: str) -> dict[str, Any]:
    """The recorded values that differ from the profile's ({} for an unknown profile)."""
    if profile not in config_lib.PROFILES:
        return {}
    defaults = profile_values(profile)
    changed = {}
    for key, value in sorted(recorded.items()):
        if key in defaults and not _same_value(defaults[key], value):
            changed[key] = value
    return changed


def profile_values(profile: str) -> dict[str, Any]:
    """The profile's config as {`--set` key: value}."""
    return run_page.config_values(config_lib.load_profile(profile))


def _same_value(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        return None not in (expected, actual) and math.isclose(float(expected), float(actual), rel_tol=1e-9)
    if isinstance(expected, str) and isinstance(actual, str) and os.sep in expected:
        return os.path.abspath(expected) == os.path.abspath(actual)
    return expected == actual


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


def serving_model_dir(model_uri: str) -> str:
    """The Trainer's SavedModel: TFX's Format-Serving folder of the Model artifact."""
    serving = os.path.join(model_uri, "Format-Serving")
    return serving if tf.io.gfile.isdir(serving) else model_uri


def read_training(data: PageData, model: Optional[Artifact], model_run: Optional[Artifact]) -> None:
    if model is not None:
        path = os.path.join(serving_model_dir(model.uri), history_lib.HISTORY_JSON)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                data.history = json.load(f)
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


def read_evaluation(data: PageData, evaluator_properties: dict[str, Any], evaluation: Optional[Artifact],
                    summary: Optional[report.RunReport]) -> None:
    data.accuracy_bar = evaluator_properties.get("accuracy_bar")
    data.max_accuracy_drop = max_accuracy_drop(evaluator_properties.get("eval_config"))
    if summary is not None:
        data.metrics, data.metrics_by_label = dict(summary.metrics), dict(summary.metrics_by_label)
    elif evaluation is not None:
        data.metrics, data.metrics_by_label = report.read_metrics(evaluation.uri)
    if evaluation is not None:
        data.baseline_metrics, data.metric_changes = baseline_and_changes(evaluation.uri)


def baseline_and_changes(evaluation_uri: str) -> tuple[dict[str, float], dict[str, float]]:
    """The baseline's metrics on the whole split and the candidate's change against them
    (both empty when there was no baseline)."""
    baseline: dict[str, float] = {}
    changes: dict[str, float] = {}
    for record in tfma.load_metrics(evaluation_uri):
        if tfma.slicer.deserialize_slice_key(record.slice_key):
            continue
        for kv in record.metric_keys_and_values:
            if not kv.value.HasField("double_value"):
                continue
            if kv.key.is_diff:
                changes[kv.key.name] = kv.value.double_value.value
            elif kv.key.model_name == "baseline":
                baseline[kv.key.name] = kv.value.double_value.value
    return baseline, changes


def read_verdict(data: PageData, blessing: Optional[Artifact], evaluation: Optional[Artifact],
                 pushed: Optional[Artifact], summary: Optional[report.RunReport]) -> None:
    if summary is not None:
        data.blessed, data.blessing_reason = summary.blessed, summary.blessing_reason
        data.baseline_model, data.pushed_model_dir = summary.baseline_model, summary.pushed_model_dir
    else:
        if blessing is not None:
            data.blessed = _is_one(blessing.properties.get("blessed"))
            data.blessing_reason = "passed the gate" if data.blessed else \
                report.failure_reason(evaluation.uri if evaluation is not None else None)
            data.baseline_model = blessing.properties.get("baseline_model")
        if pushed is not None and _is_one(pushed.properties.get("pushed")):
            data.pushed_model_dir = pushed.properties.get("pushed_destination")
    data.model_serving_dir = os.path.dirname(data.pushed_model_dir) if data.pushed_model_dir else \
        (os.path.dirname(data.baseline_model) if data.baseline_model else None)


def read_predictions(data: PageData, model_dir: str, test_files: list[str]) -> None:
    """Runs the model's examples signature (the one TFMA called) over the test split: the
    probabilities for the ROC curve and the most confident mistakes (only their examples
    are kept)."""
    if not test_files or not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        return
    predict = tf.saved_model.load(model_dir).signatures[features.EXAMPLES_SIGNATURE]
    spec = {features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
            features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
            features.FILENAME_KEY: tf.io.FixedLenFeature([], tf.string, default_value="")}
    wrong = []
    for batch in tfrecords.dataset(test_files).take(MAX_PREDICTED).batch(PREDICT_BATCH):
        parsed = {key: value.numpy() for key, value in tf.io.parse_example(batch, spec).items()}
        probabilities = predict(**{features.EXAMPLES_INPUT_KEY: batch})[features.PROBABILITY_KEY].numpy().tolist()
        labels = parsed[features.LABEL_KEY].tolist()
        for i, (label, probability) in enumerate(zip(labels, probabilities)):
            if int(probability > 0.5) != label:
                wrong.append((abs(probability - 0.5), label, probability, parsed[features.IMAGE_KEY][i],
                              parsed[features.FILENAME_KEY][i].decode("utf-8", "replace")))
        data.test_labels += labels
        data.test_probabilities += probabilities
    data.num_wrong = len(wrong)
    wrong.sort(key=lambda mistake: -mistake[0])
    data.errors = [
        WrongPrediction(thumbnail=thumbnail(image), label=data.label_names[label],
                        predicted=data.label_names[int(probability > 0.5)], probability=probability, file_name=name)
        for _, label, probability, image, name in wrong[:MAX_ERRORS]
    ]


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


def pipeline_name_in(pipeline_root: str, profile: Optional[str]) -> str:
    """The pipeline whose runs the root holds: the profile's, or the only one there."""
    names = report.pipeline_names(open_run_store(pipeline_root))
    wanted = config_lib.load_profile(profile).pipeline_name if profile else None
    if wanted in names or (wanted and not names):
        return wanted
    if not names:
        raise NoRun(f"no pipeline runs in {metadata_path(pipeline_root)}")
    if wanted:
        raise NoRun(f"{metadata_path(pipeline_root)} holds no run of {wanted} (profile {profile}), only of "
                    f"{', '.join(names)}")
    if len(names) > 1:
        raise NoRun(f"{metadata_path(pipeline_root)} holds runs of {', '.join(names)}: pass --profile")
    return names[0]
