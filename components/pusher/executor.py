"""The Pusher's executor: a model version appears in the serving folder all at once.

TFX's Pusher copies file by file into `<base>/<version>/`, so TF Serving (which polls the
base folder) can see a half-copied version. Here the copy goes to a hidden sibling folder on
the same filesystem first and is then renamed into place; a copy that fails (a full disk)
is removed, so neither a version nor a staging folder is left. The version number is above
every version folder already there, broken ones included (`components.serving.versions`,
`push_atomically` and `next_version`).
"""

from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.serving.versions import push_atomically


# The Evaluator's verdict and the InfraValidator's: TFX's CheckBlessing reads `blessed` of each.
REQUIRED_BLESSINGS = (standard_component_specs.MODEL_BLESSING_KEY, standard_component_specs.INFRA_BLESSING_KEY)


class Executor(pusher_executor.Executor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        missing = [key for key in REQUIRED_BLESSINGS if not input_dict.get(key)]
        if missing:
            raise ValueError(f"the Pusher got no {' and no '.join(missing)}: it pushes only a model the Evaluator "
                             "and the InfraValidator blessed (pipeline/pipeline.py wires both)")
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise ValueError("this Pusher supports only a filesystem push_destination (PushDestination.filesystem)")
        base_directory = destination.filesystem.base_directory
        io_utils.copy_dir(model_path, model_push.uri)
        version, serving_path = push_atomically(model_path, base_directory)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        logging.info("Model version %s pushed to %s", version, serving_path)
