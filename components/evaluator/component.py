"""Evaluator: TFX's Evaluator, with the blessing's accuracy bar as an exec property of its own.

TFX's Kubeflow compiler accepts a RuntimeParameter only as a whole exec property, not inside
the eval_config proto, so the bar is an exec property here and the executor writes it into
eval_config's BinaryAccuracy value threshold before TFX's Evaluator runs. Locally it is a
plain value.
"""

from typing import Optional, Sequence, Union

from tensorflow_model_analysis.proto import config_pb2
from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.utils import json_utils

from components.evaluator import executor, spec
from components.serving import baseline as baseline_lib


class Evaluator(evaluator_component.Evaluator):
    """TFX's Evaluator whose accuracy bar can be a Kubeflow runtime parameter."""

    SPEC_CLASS = spec.EvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        eval_config: config_pb2.EvalConfig,
        accuracy_bar: Union[float, data_types.RuntimeParameter],
        serving_dir: Optional[str] = None,
        baseline_model: Optional[types.BaseChannel] = None,
        example_splits: Optional[Sequence[str]] = None,
        gate_baseline: Optional[str] = None,
    ):
        """`serving_dir`: the Pusher's destination; its newest version that holds a loadable
        SavedModel, the model being served, is the baseline unless `baseline_model` gives one;
        newer broken versions are skipped and named (see components.serving.baseline).

        `gate_baseline`: the served state the verdict holds for, an exec property so that the
        cache key changes when the served model does (a cached Evaluator never reuses a verdict
        against a model no longer served). By default it is read from a local `serving_dir` now,
        as the pipeline is built (components.serving.baseline); a remote one is left out (read when
        the pipeline is compiled for Kubeflow, it would mean nothing at run time: the
        Kubeflow compile turns KFP's cache off for the Evaluator and Pusher instead)."""
        if gate_baseline is None and serving_dir and not baseline_model and "://" not in serving_dir:
            gate_baseline = baseline_lib.gate_baseline(serving_dir)
        # Evaluator.__init__ builds a plain EvaluatorSpec; this spec class extends it, so start one level up.
        super(evaluator_component.Evaluator, self).__init__(
            spec=spec.EvaluatorSpec(
                examples=examples,
                model=model,
                baseline_model=baseline_model,
                eval_config=eval_config,
                example_splits=json_utils.dumps(list(example_splits) if example_splits else None),
                accuracy_bar=accuracy_bar,
                serving_dir=serving_dir,
                gate_baseline=gate_baseline,
                evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
                blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            )
        )
