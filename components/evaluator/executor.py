"""The Evaluator's executor: TFX's, with the accuracy bar exec property written into eval_config
and the model being served as the baseline.

The baseline is the newest version in the serving folder (the Pusher's destination, which
holds only blessed models): the model TF Serving serves. Finding it here, at run time, needs
no ML Metadata query from the orchestrator, so the same code runs locally and on every
Kubeflow Pipelines backend (open-source KFP runs no resolver executors). With no version
served yet, the accuracy bar alone decides.
"""

import os
from typing import Any, Optional

from absl import logging
from google.protobuf import json_format
from tensorflow_model_analysis.proto import config_pb2
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts
from tfx.types.standard_component_specs import BASELINE_MODEL_KEY, BLESSING_KEY, EVAL_CONFIG_KEY
from tfx.utils import io_utils, path_utils

from components.evaluator.spec import ACCURACY_BAR_KEY, SERVING_DIR_KEY

ACCURACY_CLASS_NAME = "BinaryAccuracy"
# The blessing's custom properties for its baseline, as TFX's Evaluator names them.
BASELINE_MODEL_URI_PROPERTY = "baseline_model"
BASELINE_MODEL_ID_PROPERTY = "baseline_model_id"


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        input_dict = dict(input_dict)
        serving_dir = exec_properties.get(SERVING_DIR_KEY)
        served = None
        if serving_dir and not input_dict.get(BASELINE_MODEL_KEY):
            served = served_version(serving_dir)
            if served:
                logging.info("Baseline: the served model %s.", served)
                input_dict[BASELINE_MODEL_KEY] = [baseline_model(served, os.path.join(self._get_tmp_dir(), "baseline"))]
            else:
                logging.info("No model served in %s yet: the accuracy bar alone decides.", serving_dir)
        super().Do(input_dict, output_dict, with_accuracy_bar(exec_properties))
        if served:
            record_served_baseline(output_dict.get(BLESSING_KEY, []), served)


def served_version(serving_dir: str) -> Optional[str]:
    """The newest version folder in `serving_dir` (TF Serving serves the highest number), or None."""
    if not fileio.isdir(serving_dir):
        return None
    versions = [name.strip("/") for name in fileio.listdir(serving_dir) if name.strip("/").isdigit()]
    if not versions:
        return None
    return os.path.join(serving_dir, max(versions, key=int))


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
