"""Trainer: TFX's Trainer, with the phases' epochs and learning rates as exec properties of their own.

TFX's Kubeflow compiler accepts a RuntimeParameter only as a whole exec property, not inside
custom_config, so each tunable is an exec property here and the executor merges them into
custom_config before calling the run_fn. Locally they are plain values.
"""

from typing import Any, Optional, Union

from tfx import types
from tfx.components.trainer import component as trainer_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from components.trainer import executor, spec

Tunable = Union[int, float, data_types.RuntimeParameter]


class Trainer(trainer_component.Trainer):
    """TFX's Trainer whose run_fn's tunables (both phases' epochs and learning rates) can be
    Kubeflow runtime parameters, and which checkpoints every epoch under `checkpoint_root`
    (none: no checkpoints) so that a rerun on the same inputs resumes."""

    SPEC_CLASS = spec.TrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        transform_graph: types.BaseChannel,
        schema: types.BaseChannel,
        run_fn: str,
        train_args: trainer_pb2.TrainArgs,
        eval_args: trainer_pb2.EvalArgs,
        custom_config: dict[str, Any],
        checkpoint_root: Optional[str] = None,
        **tunables: Tunable,
    ):
        """`tunables`: a value or RuntimeParameter for each of spec.TUNABLE_TYPES (both phases'
        epochs and learning rates)."""
        if set(tunables) != set(spec.TUNABLE_TYPES):
            raise TypeError(f"Trainer takes the tunables {sorted(spec.TUNABLE_TYPES)}, got {sorted(tunables)}")
        # Trainer.__init__ builds a plain TrainerSpec; this spec class extends it, so start one level up.
        super(trainer_component.Trainer, self).__init__(
            spec=spec.TrainerSpec(
                examples=examples,
                transform_graph=transform_graph,
                schema=schema,
                run_fn=run_fn,
                train_args=train_args,
                eval_args=eval_args,
                # The tunables travel only as exec properties: no stale copy in custom_config.
                custom_config=json_utils.dumps(
                    {key: value for key, value in custom_config.items() if key not in spec.TUNABLE_TYPES}
                ),
                **tunables,
                checkpoint_root=checkpoint_root,
                model=types.Channel(type=standard_artifacts.Model),
                model_run=types.Channel(type=standard_artifacts.ModelRun),
            )
        )
