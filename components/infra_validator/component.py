"""InfraValidator: the candidate must load and answer in TF Serving's loader before it may be pushed.

TFX's InfraValidator starts a TF Serving binary or container on the candidate; neither exists
where this pipeline is built and tested, and TF Serving's loader is TensorFlow's C++
`LoadSavedModel`, which the TensorFlow wheel ships. This one runs the candidate in that loader
(`c_loader`, a C program in processes of its own), replays every warm-up request as TF
Serving does when it loads a version, and sends a canary batch of real examples through each
signature, all within a time limit. Two loader processes run side by side (the warm-up's
signature in one, the other signatures in the other), so that the graphs' first-call
optimisations overlap. Its InfraBlessing is what TFX's Pusher checks
(`blessed` = 1), so a model TF Serving could not serve is never pushed.
"""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts

from components.config import TEST_SPLIT
from components.infra_validator import executor, spec


class InfraValidator(base_component.BaseComponent):
    SPEC_CLASS = spec.InfraValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        examples: types.BaseChannel,
        timeout_seconds: int,
        canary_size: int,
        canary_split: str = TEST_SPLIT,
    ):
        """`timeout_seconds` bounds the whole validation (loading the model, the warm-up and
        the canaries); the canary batch is the first `canary_size` examples of `canary_split`.
        Their defaults are the settings' (infra_validator.*, components/config.py)."""
        super().__init__(
            spec=spec.InfraValidatorSpec(
                model=model,
                examples=examples,
                timeout_seconds=timeout_seconds,
                canary_split=canary_split,
                canary_size=canary_size,
                blessing=types.Channel(type=standard_artifacts.InfraBlessing),
            )
        )
