"""The Evaluator's executor: TFX's, with the accuracy bar exec property written into eval_config first."""

from typing import Any

from google.protobuf import json_format
from tensorflow_model_analysis.proto import config_pb2
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types.standard_component_specs import EVAL_CONFIG_KEY

from components.evaluator.spec import ACCURACY_BAR_KEY

ACCURACY_CLASS_NAME = "BinaryAccuracy"


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        super().Do(input_dict, output_dict, with_accuracy_bar(exec_properties))


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
