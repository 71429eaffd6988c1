"""TrainerSpec plus the two phases' epochs and learning rates as exec properties of their own, and
where checkpoints go."""

from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.config import RUNTIME_TUNABLES

# Folder under which each training's per-epoch checkpoints go (see components/trainer/checkpoints.py).
CHECKPOINT_ROOT_KEY = "checkpoint_root"
# The run_fn reads these keys from custom_config; here each has its own exec property.
TUNABLE_TYPES = RUNTIME_TUNABLES["trainer"]


class TrainerSpec(standard_component_specs.TrainerSpec):
    PARAMETERS = {
        **standard_component_specs.TrainerSpec.PARAMETERS,
        **{key: ExecutionParameter(type=kind) for key, kind in TUNABLE_TYPES.items()},
        CHECKPOINT_ROOT_KEY: ExecutionParameter(type=str, optional=True),
    }
