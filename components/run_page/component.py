"""RunPage: the run's page, written by the pipeline itself as its last step.

It reads only its inputs (the data, the Trainer's history, TFMA's evaluation, both blessings,
the push), never ML Metadata or the orchestrator's records, so it runs the same under the
LocalDagRunner, kfp.local, Kubeflow Pipelines and Vertex AI; its outputs are the types KFP's UI
renders with its own viewers (artifacts.py). What only the orchestrator knows (each step's
duration, which came from the cache) is not on its page: Kubeflow's run view shows it, and the
local commands write the page again with it (pipeline/run_page/page.py).
"""

import json
from typing import Any, Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec

from components.run_page import executor, spec


class RunPage(base_component.BaseComponent):
    SPEC_CLASS = spec.RunPageSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        statistics: types.BaseChannel,
        transformed_examples: types.BaseChannel,
        model: types.BaseChannel,
        model_run: types.BaseChannel,
        evaluation: types.BaseChannel,
        blessing: types.BaseChannel,
        infra_blessing: types.BaseChannel,
        pushed_model: types.BaseChannel,
        pipeline_name: str,
        profile: str,
        serving_dir: str,
        config_changes: Optional[dict[str, tuple[Any, Any]]] = None,
    ):
        """`config_changes`: {`--set` key: (the profile's value, the run's)}, the settings the
        page lists as changed; `serving_dir` is the Pusher's folder."""
        super().__init__(
            spec=spec.RunPageSpec(
                examples=examples,
                statistics=statistics,
                transformed_examples=transformed_examples,
                model=model,
                model_run=model_run,
                evaluation=evaluation,
                blessing=blessing,
                infra_blessing=infra_blessing,
                pushed_model=pushed_model,
                page=types.Channel(type=spec.artifacts.HTML),
                metrics=types.Channel(type=spec.artifacts.Metrics),
                classification_metrics=types.Channel(type=spec.artifacts.ClassificationMetrics),
                verdict=types.Channel(type=spec.artifacts.Markdown),
                pipeline_name=pipeline_name,
                profile=profile,
                config_changes=json.dumps({key: list(pair) for key, pair in (config_changes or {}).items()},
                                          sort_keys=True, default=str),
                serving_dir=serving_dir,
            )
        )
