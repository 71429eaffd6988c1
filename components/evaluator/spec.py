"""EvaluatorSpec plus the accuracy bar as an exec property of its own."""

from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

ACCURACY_BAR_KEY = "accuracy_bar"


class EvaluatorSpec(standard_component_specs.EvaluatorSpec):
    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        ACCURACY_BAR_KEY: ExecutionParameter(type=float),
    }
