"""TrainerSpec plus the two phases' epochs and learning rates as exec properties of their own, and
where checkpoints go."""

from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

PHASE1_EPOCHS_KEY = "phase1_epochs"
PHASE2_EPOCHS_KEY = "phase2_epochs"
PHASE1_LEARNING_RATE_KEY = "phase1_learning_rate"
PHASE2_LEARNING_RATE_KEY = "phase2_learning_rate"
# Folder under which each training's per-epoch checkpoints go (see components/trainer/checkpoints.py).
CHECKPOINT_ROOT_KEY = "checkpoint_root"
# The run_fn reads these keys from custom_config; here each has its own exec property.
TUNABLE_TYPES = {
    PHASE1_EPOCHS_KEY: int,
    PHASE2_EPOCHS_KEY: int,
    PHASE1_LEARNING_RATE_KEY: float,
    PHASE2_LEARNING_RATE_KEY: float,
}


class TrainerSpec(standard_component_specs.TrainerSpec):
    PARAMETERS = {
        **standard_component_specs.TrainerSpec.PARAMETERS,
        **{key: ExecutionParameter(type=kind) for key, kind in TUNABLE_TYPES.items()},
        CHECKPOINT_ROOT_KEY: ExecutionParameter(type=str, optional=True),
    }
