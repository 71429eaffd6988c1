"""The RunPage executor: the run's record from the step's inputs, then the page, the metrics,
the confusion matrix and ROC, and the verdict, each where KFP's UI reads it."""

from __future__ import annotations

import json
from typing import Any, Optional

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.run_page import files, html, kfp_outputs, outcome, page_data
from components.run_page import spec
from components.run_page.record import Artifact, RunResult, plain_properties

DISPLAY_NAME = "display_name"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        result = record_of(input_dict, exec_properties, self._context.pipeline_run_id if self._context else None)
        changes = {key: tuple(pair) for key, pair in json.loads(exec_properties.get(spec.CONFIG_CHANGES_KEY) or "{}").items()}
        data = page_data.from_result(result, changes)
        outputs = {key: artifact_utils.get_single_instance(artifacts) for key, artifacts in output_dict.items()}
        write_outputs(data, outputs)
        logging.info("RunPage: %s\n%s", outputs[spec.PAGE_KEY].uri, result.render())


def record_of(input_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any],
              run_id: Optional[str]) -> RunResult:
    """What the run did, as far as its artifacts tell: no step's status or time, nothing of the
    cache (the orchestrator's)."""
    result = RunResult(pipeline_name=exec_properties.get(spec.PIPELINE_NAME_KEY) or "",
                       run_id=run_id, profile=exec_properties.get(spec.PROFILE_KEY) or "",
                       components=[], wall_seconds=None)
    result.page_inputs = {key: Artifact(artifacts[-1].uri, input_properties(artifacts[-1]))
                          for key, artifacts in input_dict.items() if artifacts}
    outcome.fill_outcome(result, exec_properties.get(spec.SERVING_DIR_KEY) or None)
    return result


def input_properties(artifact: types.Artifact) -> dict[str, Any]:
    """An input's custom properties as plain values, however the runner handed them: ML
    Metadata's int, double and string values (the local runner), or JSON values (TFX's Kubeflow
    entrypoint rebuilds each entry of an input's metadata as one: `_parse_raw_artifact`)."""
    properties = plain_properties(artifact.mlmd_artifact.custom_properties)
    for key, value in artifact.mlmd_artifact.custom_properties.items():
        if value.WhichOneof("value") == "struct_value":
            properties[key] = artifact.get_json_value_custom_property(key)
    return properties


def write_outputs(data: page_data.PageData, outputs: dict[str, types.Artifact]) -> None:
    """The page and the verdict as files at their artifacts' URIs, the metrics as their
    artifacts' custom properties, each with the display name the UI lists it by."""
    files.write_atomically(outputs[spec.PAGE_KEY].uri, html.render(data))
    files.write_atomically(outputs[spec.VERDICT_KEY].uri, kfp_outputs.verdict_markdown(data))
    metrics = outputs[spec.METRICS_KEY]
    for name, value in kfp_outputs.metrics(data).items():
        metrics.set_float_custom_property(name, value)
    classification = outputs[spec.CLASSIFICATION_METRICS_KEY]
    confusion = kfp_outputs.confusion_matrix(data)
    if confusion is not None:
        classification.set_json_value_custom_property("confusionMatrix", confusion)
    roc = kfp_outputs.confidence_metrics(data)
    if roc is not None:
        classification.set_json_value_custom_property("confidenceMetrics", roc)
    for key, artifact in outputs.items():
        artifact.set_string_custom_property(DISPLAY_NAME, kfp_outputs.DISPLAY_NAMES[key])
