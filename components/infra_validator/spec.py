"""InfraValidatorSpec: the candidate model and the examples its canary requests are made of."""

from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

MODEL_KEY = "model"
EXAMPLES_KEY = "examples"
BLESSING_KEY = "blessing"
TIMEOUT_SECONDS_KEY = "timeout_seconds"
CANARY_SPLIT_KEY = "canary_split"
CANARY_SIZE_KEY = "canary_size"


class InfraValidatorSpec(ComponentSpec):
    PARAMETERS = {
        TIMEOUT_SECONDS_KEY: ExecutionParameter(type=int),
        CANARY_SPLIT_KEY: ExecutionParameter(type=str),
        CANARY_SIZE_KEY: ExecutionParameter(type=int),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing),
    }
