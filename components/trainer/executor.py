"""The Trainer's executor: TFX's GenericExecutor, whose run_fn finds the tunable exec properties in custom_config."""

from typing import Any

from tfx.components.trainer import executor as trainer_executor
from tfx.types.standard_component_specs import CUSTOM_CONFIG_KEY
from tfx.utils import json_utils

from components.trainer.spec import TUNABLE_TYPES


class Executor(trainer_executor.GenericExecutor):
    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        super().Do(input_dict, output_dict, with_tunables_in_custom_config(exec_properties))


def with_tunables_in_custom_config(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The tunables override custom_config's keys of the same name.

    Cast to their types: Kubeflow passes numbers as JSON numbers (3.0 for an int).
    """
    custom_config = json_utils.loads(exec_properties.get(CUSTOM_CONFIG_KEY) or "null") or {}
    for key, kind in TUNABLE_TYPES.items():
        if exec_properties.get(key) is not None:
            custom_config[key] = kind(exec_properties[key])
    return {**exec_properties, CUSTOM_CONFIG_KEY: json_utils.dumps(custom_config)}
