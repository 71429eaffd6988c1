"""The Trainer's executor: TFX's GenericExecutor, whose run_fn finds the tunable exec properties,
and the folder to checkpoint in, in custom_config."""

import os
from typing import Any

from tfx.components.trainer import executor as trainer_executor
from tfx.types import standard_component_specs
from tfx.types.standard_component_specs import CUSTOM_CONFIG_KEY
from tfx.utils import json_utils

from components.trainer import checkpoints
from components.trainer.spec import CHECKPOINT_ROOT_KEY, TUNABLE_TYPES

# What determines a training, besides its inputs: a change to any of these starts afresh.
_TRAINING_PROPERTIES = (
    CUSTOM_CONFIG_KEY,
    standard_component_specs.TRAIN_ARGS_KEY,
    standard_component_specs.EVAL_ARGS_KEY,
    standard_component_specs.RUN_FN_KEY,
)


class Executor(trainer_executor.GenericExecutor):
    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        exec_properties = with_tunables_in_custom_config(exec_properties)
        super().Do(input_dict, output_dict, with_checkpoint_dir(input_dict, exec_properties))


def with_tunables_in_custom_config(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The tunables override custom_config's keys of the same name.

    Cast to their types: Kubeflow passes numbers as JSON numbers (3.0 for an int).
    """
    custom_config = json_utils.loads(exec_properties.get(CUSTOM_CONFIG_KEY) or "null") or {}
    for key, kind in TUNABLE_TYPES.items():
        if exec_properties.get(key) is not None:
            custom_config[key] = kind(exec_properties[key])
    return {**exec_properties, CUSTOM_CONFIG_KEY: json_utils.dumps(custom_config)}


def with_checkpoint_dir(input_dict, exec_properties: dict[str, Any]) -> dict[str, Any]:
    """Names the training's checkpoint folder in custom_config: `<checkpoint_root>/<key>`, the
    key a digest of the input artifacts' URIs and the training settings, so that a rerun on
    the same inputs (a Kubeflow retry, a rerun after a crash) finds the same folder."""
    root = exec_properties.get(CHECKPOINT_ROOT_KEY)
    if not root:
        return exec_properties
    inputs = {name: sorted(artifact.uri for artifact in artifacts) for name, artifacts in input_dict.items()}
    settings = {key: exec_properties.get(key) for key in _TRAINING_PROPERTIES}
    custom_config = json_utils.loads(exec_properties.get(CUSTOM_CONFIG_KEY) or "null") or {}
    custom_config[checkpoints.CHECKPOINT_DIR_KEY] = os.path.join(root, checkpoints.checkpoint_key(inputs, settings))
    return {**exec_properties, CUSTOM_CONFIG_KEY: json_utils.dumps(custom_config)}
