"""The pipeline, as README's diagram draws it (tests/readme_diagram_test.py checks the drawing's
steps and edges against this one): TfdsExampleGen -> StatisticsGen -> SchemaGen ->
ExampleValidator, SchemaGen -> Transform -> Trainer, then the Evaluator (baseline: the model
being served) and the InfraValidator (the candidate in TF Serving's loader) side by side, both
blessings into the Pusher, and last the RunPage (the run's page and what KFP's UI shows).
"""

from typing import Any, Callable, Optional, Union

from ml_metadata.proto import metadata_store_pb2
from tfx.components import ExampleValidator, SchemaGen, StatisticsGen
from tfx.orchestration.data_types import RuntimeParameter
from tfx.orchestration.pipeline import Pipeline
from tfx.proto.pusher_pb2 import PushDestination
from tfx.proto.trainer_pb2 import EvalArgs, TrainArgs
from tfx.proto.transform_pb2 import SplitsConfig

from components.config import PipelineConfig
from components.evaluator import Evaluator, build_eval_config
from components.example_gen import EVAL_SPLIT, TEST_SPLIT, TRAIN_SPLIT, TfdsExampleGen
from components.infra_validator import InfraValidator
from components.pusher import Pusher
from components.run_page import RunPage
from components.trainer import RUN_FN, Trainer
from components.transform import PREPROCESSING_FN, Transform
from pipeline import steps
from pipeline.config import tunables
from pipeline.run_page import config_changes

TRAINER_CHECKPOINTS = "trainer-checkpoints"


def create_pipeline(
    config: PipelineConfig,
    beam_pipeline_args: Optional[list[str]] = None,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    runtime_parameters: bool = False,
    changes: Optional[dict[str, tuple[Any, Any]]] = None,
) -> Pipeline:
    """With `runtime_parameters`, the tunables (both phases' epochs and learning rates, the
    accuracy bar) are RuntimeParameters defaulting to the config's values, which Kubeflow
    Pipelines lets a user change per run; otherwise they are the values themselves. `changes`
    (pipeline/run_page/config_changes.py), the settings the run page lists as changed from the
    profile, default to the config's; a caller that fills in paths of its own passes those
    taken before."""
    tunable = _runtime_parameter if runtime_parameters else _plain_value
    example_gen = TfdsExampleGen.from_data_config(config.data)

    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])

    schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)

    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )

    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={"image_size": config.trainer.image_size},
        # The test split is evaluated on raw examples by the Evaluator: no need to transform it.
        splits_config=SplitsConfig(analyze=[TRAIN_SPLIT], transform=[TRAIN_SPLIT, EVAL_SPLIT]),
        disable_statistics=True,
    )

    trainer = Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=TrainArgs(splits=[TRAIN_SPLIT]),
        eval_args=EvalArgs(splits=[EVAL_SPLIT]),
        custom_config=config.trainer.to_custom_config(),
        **tunable_values(steps.TRAINER.id, config.trainer, tunable),
        # A rerun after a crash, or a Kubeflow retry, resumes from the last finished epoch.
        checkpoint_root=f"{config.resolved_pipeline_root}/{TRAINER_CHECKPOINTS}",
    )

    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        # The baseline is the model being served, found by the Evaluator at run time.
        serving_dir=config.model_serving_dir,
        eval_config=build_eval_config(config.evaluator.accuracy_bar, config.evaluator.max_accuracy_drop),
        example_splits=[TEST_SPLIT],
        **tunable_values(steps.EVALUATOR.id, config.evaluator, tunable),
    )

    infra_validator = InfraValidator(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        timeout_seconds=config.infra_validator.timeout_seconds,
        canary_split=TEST_SPLIT,
        canary_size=config.infra_validator.canary_size,
    )

    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        push_destination=PushDestination(
            filesystem=PushDestination.Filesystem(base_directory=config.model_serving_dir)
        ),
    )

    run_page = RunPage(
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        transformed_examples=transform.outputs["transformed_examples"],
        model=trainer.outputs["model"],
        model_run=trainer.outputs["model_run"],
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        pushed_model=pusher.outputs["pushed_model"],
        pipeline_name=config.pipeline_name,
        profile=config.profile,
        serving_dir=config.model_serving_dir,
        config_changes=config_changes.of_config(config) if changes is None else changes,
    )

    return Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.resolved_pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            transform,
            trainer,
            evaluator,
            infra_validator,
            pusher,
            run_page,
        ],
        enable_cache=True,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )


def tunable_values(component: str, section: Any, tunable: Callable) -> dict[str, Any]:
    """The component's runtime tunables (config/tunables.py), each from its config section."""
    return {t.name: tunable(t.name, t.kind, getattr(section, t.field)) for t in tunables.of_component(component)}


def _plain_value(name: str, ptype: type, value: Union[int, float]) -> Union[int, float]:
    return ptype(value)


def _runtime_parameter(name: str, ptype: type, value: Union[int, float]) -> RuntimeParameter:
    return RuntimeParameter(name=name, ptype=ptype, default=ptype(value))
