"""EvaluatorSpec plus the accuracy bar and the serving folder whose newest loadable version is the baseline."""

from tfx.types import standard_component_specs
from tfx.types.component_spec import ExecutionParameter

from components.config import RUNTIME_TUNABLES

ACCURACY_BAR_KEY = "accuracy_bar"
TUNABLE_TYPES = RUNTIME_TUNABLES["evaluator"]
SERVING_DIR_KEY = "serving_dir"
# The served state the verdict holds for, computed when the pipeline is built (part of the
# cache key: see components.serving.baseline.gate_baseline).
GATE_BASELINE_KEY = "gate_baseline"


class EvaluatorSpec(standard_component_specs.EvaluatorSpec):
    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        **{key: ExecutionParameter(type=kind) for key, kind in TUNABLE_TYPES.items()},
        SERVING_DIR_KEY: ExecutionParameter(type=str, optional=True),
        GATE_BASELINE_KEY: ExecutionParameter(type=str, optional=True),
    }
