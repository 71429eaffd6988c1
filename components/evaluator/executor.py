"""The Evaluator's executor: TFX's, with the accuracy bar exec property written into eval_config
and the model being served as the baseline.

The baseline is the newest version in the serving folder (the Pusher's destination, which
holds only blessed models) that holds a loadable SavedModel: the model TF Serving serves.
A version that does not (an empty folder left by an interrupted copy, a corrupt
saved_model.pb, missing variables) is skipped, since TF Serving cannot load it either and
keeps serving the older one; each skipped version is named on the console
(`[evaluator] skipping serving version N: <reason>`) and recorded on the blessing
(`skipped_versions`). Finding the baseline here, at run time, needs no ML Metadata query
from the orchestrator, so the same code runs locally and on every Kubeflow Pipelines backend
(open-source KFP runs no resolver executors). With no loadable version served yet, the
accuracy bar alone decides.

Since the baseline is found at run time, the served folder is part of the cache key through
the exec property `gate_baseline` (computed by the component when the pipeline is built, see
`gate_baseline`): a cached verdict is reused only while the model served is the one it was
compared against, or the candidate it blessed (pushed since). Each blessed candidate's
fingerprint and key are kept in `.<model name>.gate.json` beside the serving folder (outside
it: TF Serving and the Pusher see only version folders).
"""

import dataclasses
import hashlib
import json
import os
import re
from typing import Any, Optional

import tensorflow as tf
from absl import logging
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_model_analysis.proto import config_pb2
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts
from tfx.types.standard_component_specs import BASELINE_MODEL_KEY, BLESSING_KEY, EVAL_CONFIG_KEY
from tfx.utils import io_utils, path_utils

from components.evaluator.spec import ACCURACY_BAR_KEY, GATE_BASELINE_KEY, SERVING_DIR_KEY
from components.pusher import versions as versions_lib

ACCURACY_CLASS_NAME = "BinaryAccuracy"
# The blessing's custom properties for its baseline, as TFX's Evaluator names them.
BASELINE_MODEL_URI_PROPERTY = "baseline_model"
BASELINE_MODEL_ID_PROPERTY = "baseline_model_id"
# JSON [{"version": "N", "path": ..., "reason": ...}]: the versions newer than the baseline
# that hold no loadable SavedModel, newest first ([] when none was skipped).
SKIPPED_VERSIONS_PROPERTY = "skipped_versions"
SAVED_MODEL_TAG = "serve"  # the tag TF Serving and TFMA load
GATE_RECORD_SUFFIX = ".gate.json"
GATE_RECORD_ENTRIES = 100  # the newest blessed candidates kept in the record
_DATA_SHARD = re.compile(r"variables\.data-(\d+)-of-(\d+)")


@dataclasses.dataclass(frozen=True)
class SkippedVersion:
    version: str
    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The newest loadable version in a serving folder (None when there is none) and the newer
    versions skipped on the way to it."""

    path: Optional[str]
    skipped: tuple[SkippedVersion, ...] = ()


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        input_dict = dict(input_dict)
        exec_properties = with_accuracy_bar(exec_properties)
        serving_dir = exec_properties.get(SERVING_DIR_KEY)
        baseline = Baseline(path=None)
        if serving_dir and not input_dict.get(BASELINE_MODEL_KEY):
            baseline = find_baseline(serving_dir, required_signatures(exec_properties[EVAL_CONFIG_KEY]))
            for skipped in baseline.skipped:
                print(f"[evaluator] skipping serving version {skipped.version}: {skipped.reason}", flush=True)
                logging.info("Skipped serving version %s (%s): %s", skipped.version, skipped.path, skipped.reason)
            if baseline.path:
                logging.info("Baseline: the served model %s.", baseline.path)
                input_dict[BASELINE_MODEL_KEY] = [
                    baseline_model(baseline.path, os.path.join(self._get_tmp_dir(), "baseline"))]
            else:
                logging.info("No model served in %s yet: the accuracy bar alone decides.", serving_dir)
        key = exec_properties.get(GATE_BASELINE_KEY)
        if serving_dir and key is not None and gate_baseline(serving_dir) != key:
            print(f"[evaluator] the served model changed since the pipeline was built ({key or 'none'}): "
                  f"comparing against the one served now, {baseline.path or 'none'}", flush=True)
        super().Do(input_dict, output_dict, exec_properties)
        if serving_dir:
            record_skipped_versions(output_dict.get(BLESSING_KEY, []), baseline.skipped)
            if key is not None and any(b.get_int_custom_property("blessed") == 1
                                       for b in output_dict.get(BLESSING_KEY, [])):
                candidate = path_utils.serving_model_path(input_dict["model"][0].uri)
                record_gate_verdict(serving_dir, model_fingerprint(candidate), key)
        if baseline.path:
            record_served_baseline(output_dict.get(BLESSING_KEY, []), baseline.path)


def find_baseline(serving_dir: str, signatures: tuple[str, ...] = ()) -> Baseline:
    """The newest version in `serving_dir` that holds a loadable SavedModel with `signatures`;
    the newer ones that do not, with the reason, as skipped."""
    skipped = []
    for number, path in versions_lib.versions(serving_dir):
        reason = unloadable_reason(path, signatures)
        if reason is None:
            return Baseline(path=path, skipped=tuple(skipped))
        skipped.append(SkippedVersion(version=str(number), path=path, reason=" ".join(reason.split())))
    return Baseline(path=None, skipped=tuple(skipped))


def served_version(serving_dir: str) -> Optional[str]:
    """The newest loadable version folder in `serving_dir` (the one TF Serving serves), or None."""
    return find_baseline(serving_dir).path


def model_fingerprint(model_dir: str) -> str:
    """A short hash of a SavedModel's graph and variables' index (whose entries hold each
    tensor's checksum): the same for the Trainer's model and its pushed copy."""
    digest = hashlib.sha256()
    for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
        path = os.path.join(model_dir, name)
        if fileio.exists(path):
            with fileio.open(path, "rb") as opened:
                digest.update(opened.read())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def gate_record_path(serving_dir: str) -> str:
    base = serving_dir.rstrip("/")
    return os.path.join(os.path.dirname(base), f".{os.path.basename(base)}{GATE_RECORD_SUFFIX}")


def read_gate_record(serving_dir: str) -> dict[str, str]:
    """{candidate fingerprint: the gate key it was blessed under}; {} when unreadable."""
    try:
        with fileio.open(gate_record_path(serving_dir), "r") as opened:
            record = json.loads(opened.read())
        return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}
    except (OSError, ValueError, tf.errors.OpError):
        return {}


def record_gate_verdict(serving_dir: str, fingerprint: str, key: str) -> None:
    """Remembers that the candidate `fingerprint` was blessed under `key` (written atomically)."""
    record = read_gate_record(serving_dir)
    record.pop(fingerprint, None)
    record[fingerprint] = key
    record = dict(list(record.items())[-GATE_RECORD_ENTRIES:])
    path = gate_record_path(serving_dir)
    fileio.makedirs(os.path.dirname(path))
    temporary = f"{path}.{os.getpid()}.tmp"
    with fileio.open(temporary, "w") as opened:
        opened.write(json.dumps(record, indent=1))
    fileio.rename(temporary, path, overwrite=True)


def gate_baseline(serving_dir: str) -> str:
    """The served state a verdict holds for: "" when no loadable version is served; the gate
    key a served model was blessed under when it is a candidate this gate blessed (pushed
    since: its verdict still holds, and pushing it again would only copy it); otherwise the
    served version, as "<path>#<fingerprint>"."""
    served = served_version(serving_dir)
    if not served:
        return ""
    fingerprint = model_fingerprint(served)
    blessed_under = read_gate_record(serving_dir).get(fingerprint)
    return blessed_under if blessed_under is not None else f"{served}#{fingerprint}"


def unloadable_reason(version_dir: str, signatures: tuple[str, ...] = ()) -> Optional[str]:
    """Why `version_dir` holds no SavedModel that TF Serving (and TFMA) can load, in a few
    words; None when it does: a saved_model.pb that parses, with a 'serve' meta graph that has
    `signatures`, and variables whose index reads and whose data files are all there.

    It reads the graph proto and the variables' index, not the weights: a few milliseconds.
    """
    try:
        if not fileio.isdir(version_dir):
            return "not a folder"
        entries = {name.rstrip("/") for name in fileio.listdir(version_dir)}
        if not entries:
            return "empty folder (no saved_model.pb)"
        if "saved_model.pb" not in entries:
            return "no saved_model.pb"
        with fileio.open(os.path.join(version_dir, "saved_model.pb"), "rb") as opened:
            data = opened.read()
        saved_model = saved_model_pb2.SavedModel()
        try:
            saved_model.ParseFromString(data)
        except DecodeError:
            return f"saved_model.pb is corrupt (it does not parse as a SavedModel, {len(data):,} bytes)"
        serving_graphs = [graph for graph in saved_model.meta_graphs if SAVED_MODEL_TAG in graph.meta_info_def.tags]
        if not serving_graphs:
            return f"saved_model.pb has no meta graph tagged '{SAVED_MODEL_TAG}'"
        missing = [name for name in signatures if name not in serving_graphs[0].signature_def]
        if missing:
            return f"the SavedModel has no signature {', '.join(repr(name) for name in missing)}, which the Evaluator calls"
        return _variables_problem(os.path.join(version_dir, "variables"))
    except (OSError, tf.errors.OpError) as error:
        return f"unreadable ({type(error).__name__}: {error})"


def _variables_problem(variables_dir: str) -> Optional[str]:
    if not fileio.isdir(variables_dir):
        return "no variables folder"
    entries = {name.rstrip("/") for name in fileio.listdir(variables_dir)}
    if "variables.index" not in entries:
        return "no variables/variables.index"
    try:
        tf.train.load_checkpoint(os.path.join(variables_dir, "variables"))
    except (tf.errors.OpError, ValueError) as error:
        return f"variables/variables.index is corrupt ({str(error).splitlines()[0]})"
    shards = [_DATA_SHARD.fullmatch(name) for name in entries]
    counts = {int(match.group(2)) for match in shards if match}
    if not counts:
        return "no variables/variables.data-* file"
    count = max(counts)
    present = {int(match.group(1)) for match in shards if match and int(match.group(2)) == count}
    absent = [f"variables.data-{index:05d}-of-{count:05d}" for index in range(count) if index not in present]
    if absent:
        return f"missing variables/{absent[0]}" + (f" and {len(absent) - 1} more" if len(absent) > 1 else "")
    return None


def required_signatures(eval_config_json: str) -> tuple[str, ...]:
    """The signatures TFMA calls on each model (the baseline is evaluated as the candidate is)."""
    eval_config = json_format.Parse(eval_config_json, config_pb2.EvalConfig())
    return tuple(sorted({spec.signature_name for spec in eval_config.model_specs if spec.signature_name}))


def record_skipped_versions(blessings: list[types.Artifact], skipped: tuple[SkippedVersion, ...]) -> None:
    """The versions passed over on the way to the baseline, as JSON on the blessing."""
    value = json.dumps([dataclasses.asdict(version) for version in skipped])
    for blessing in blessings:
        blessing.set_string_custom_property(SKIPPED_VERSIONS_PROPERTY, value)


def record_served_baseline(blessings: list[types.Artifact], served: str) -> None:
    """Names the served version as the blessing's baseline, in place of the copy evaluated.

    The served model is no ML Metadata artifact, so the baseline's artifact id that TFX's
    Evaluator records (0) names nothing; Kubeflow's TFX entrypoint would look it up among the
    task's inputs and fail, so it is left out.
    """
    for blessing in blessings:
        blessing.set_string_custom_property(BASELINE_MODEL_URI_PROPERTY, served)
        blessing.mlmd_artifact.custom_properties.pop(BASELINE_MODEL_ID_PROPERTY, None)


def baseline_model(version_dir: str, uri: str) -> types.Artifact:
    """A Model artifact of the served version, laid out as TFX's Evaluator reads a Trainer's model."""
    model = standard_artifacts.Model()
    model.uri = uri
    io_utils.copy_dir(version_dir, path_utils.serving_model_dir(uri))
    return model


def with_accuracy_bar(exec_properties: dict[str, Any]) -> dict[str, Any]:
    eval_config = json_format.Parse(exec_properties[EVAL_CONFIG_KEY], config_pb2.EvalConfig())
    set_accuracy_bar(eval_config, float(exec_properties[ACCURACY_BAR_KEY]))
    return {**exec_properties, EVAL_CONFIG_KEY: json_format.MessageToJson(eval_config, sort_keys=True)}


def set_accuracy_bar(eval_config: config_pb2.EvalConfig, accuracy_bar: float) -> None:
    """Sets the lower bound of every BinaryAccuracy value threshold (overall and per slice)."""
    thresholds = []
    for metrics_spec in eval_config.metrics_specs:
        for metric in metrics_spec.metrics:
            if metric.class_name != ACCURACY_CLASS_NAME:
                continue
            if metric.HasField("threshold"):
                thresholds.append(metric.threshold)
            thresholds.extend(per_slice.threshold for per_slice in metric.per_slice_thresholds)
    value_thresholds = [threshold.value_threshold for threshold in thresholds if threshold.HasField("value_threshold")]
    if not value_thresholds:
        raise ValueError(
            f"eval_config has no {ACCURACY_CLASS_NAME} value threshold to set accuracy_bar={accuracy_bar} on; "
            "build it with components.evaluator.eval_config.build_eval_config."
        )
    for value_threshold in value_thresholds:
        value_threshold.lower_bound.value = accuracy_bar
