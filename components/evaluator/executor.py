"""The Evaluator's executor: TFX's, with the accuracy bar exec property written into eval_config
and the model being served as the baseline.

The baseline is the newest version in the serving folder (the Pusher's destination, which
holds only blessed models) that holds a loadable SavedModel: the model TF Serving serves
(`components.serving.baseline`). Each version skipped on the way is named on the console
(`[evaluator] skipping serving version N: <reason>`) and recorded on the blessing
(`skipped_versions`). Finding the baseline here, at run time, needs no ML Metadata query
from the orchestrator, so the same code runs locally and on every Kubeflow Pipelines backend
(open-source KFP runs no resolver executors). With no loadable version served yet, the
accuracy bar alone decides.

Since the baseline is found at run time, the served folder is part of the cache key through
the exec property `gate_baseline` (computed by the component when the pipeline is built): a
cached verdict is reused only while the model served is the one it was compared against, or
the candidate it blessed (pushed since), which the executor records in the gate record.
"""

import dataclasses
import json
import os
from typing import Any

from absl import logging
from google.protobuf import json_format
from tensorflow_model_analysis.proto import config_pb2
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_artifacts
from tfx.types.standard_component_specs import BASELINE_MODEL_KEY, BLESSING_KEY, EVAL_CONFIG_KEY
from tfx.utils import io_utils, path_utils

from components.evaluator.eval_config import ACCURACY_CLASS_NAME
from components.evaluator.spec import ACCURACY_BAR_KEY, GATE_BASELINE_KEY, SERVING_DIR_KEY
from components.serving.baseline import (Baseline, SkippedVersion, find_baseline, gate_baseline, model_fingerprint,
                                         record_gate_verdict)

# The blessing's custom properties for its baseline, as TFX's Evaluator names them.
BASELINE_MODEL_URI_PROPERTY = "baseline_model"
BASELINE_MODEL_ID_PROPERTY = "baseline_model_id"
# JSON [{"version": "N", "path": ..., "reason": ...}]: the versions newer than the baseline
# that hold no loadable SavedModel, newest first ([] when none was skipped).
SKIPPED_VERSIONS_PROPERTY = "skipped_versions"


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
