"""Compiles the pipeline for Kubeflow Pipelines (KFP v2 backends, Vertex AI Pipelines).

KubeflowV2DagRunner writes the pipeline spec (`.yaml`) or a PipelineJob (`.json`). The
tunables are runtime parameters; everything else is fixed at compile time. Nothing is
written unless the whole compile succeeds. Every task runs the CPU image; with
`trainer.gpus` above 0 the Trainer task runs the GPU image (`make image-gpu`) instead, through
TFX's own per-component image map, and asks for its GPUs through TFX's platform config.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Optional

import yaml
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx.orchestration.data_types import RuntimeParameter
from tfx.orchestration.kubeflow.v2.pipeline_builder import DEFAULT_IMAGE_PATH_KEY

from components.config import PipelineConfig, TrainerConfig
from components.evaluator.spec import GATE_BASELINE_KEY
from pipeline import steps
from pipeline.beam.arguments import task_beam_args
from pipeline.run_page import config_changes
from pipeline.config import kubeflow as kubeflow_config_lib
from pipeline.config import rules
from pipeline.config.settings import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE, ConfigError
from pipeline.pipeline import create_pipeline
from pipeline.runners import inputs

OUTPUT_SUFFIXES = (".yaml", ".yml", ".json")

# What every compiled task runs: our entrypoint, which puts the executor input each runner
# gives into the shape TFX's own entrypoint reads, then runs TFX's (pipeline/task/entrypoint.py).
TASK_COMMAND = ["python", "-m", "pipeline.task.entrypoint"]

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def compile_kubeflow(
    config: PipelineConfig,
    output: str,
    image: str = DEFAULT_IMAGE,
    beam_args: Optional[list[str]] = None,
    local: bool = False,
    gpu_image: Optional[str] = None,
) -> str:
    """Writes the compiled pipeline to `output` and returns its path; raises ConfigError on bad input.

    `local` compiles for a run of the compiled spec on this machine (`run-compiled`, through
    kfp.local): local paths are allowed and the demo's first-use inputs are made now.
    `gpu_image`: the Trainer task's image when it asks for GPUs (required then).
    """
    check_beam_runner(config)
    if local:
        rules.check(config)  # before the demo's first-use inputs are made
        kubeflow_config = to_local_config(config)
    else:
        kubeflow_config = kubeflow_config_lib.to_kubeflow_config(config)  # first: its messages name the fix for pods
        rules.check(config)
    check_output_path(output)
    check_image(image)
    check_gpu_image(gpu_image, config.trainer.gpus)
    try:
        pipeline = create_pipeline(kubeflow_config, beam_pipeline_args=task_beam_args(beam_args, image),
                                   runtime_parameters=True, changes=config_changes.of_config(config))
    except ValueError as error:  # the components' checks of their arguments
        raise ConfigError(f"the pipeline cannot be built: {error}") from error
    request_trainer_gpus(pipeline, config.trainer)
    drop_build_time_gate_baseline(pipeline)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=task_images(image, gpu_image, config.trainer.gpus), default_commands=TASK_COMMAND,
            use_pipeline_spec_2_1=True,
        )
    )
    defaults = runtime_parameter_defaults(pipeline)
    pipeline_job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    declare_parameter_defaults(pipeline_job["pipelineSpec"], defaults)
    disable_cache(pipeline_job["pipelineSpec"], steps.uncached())
    # A run submitted without a root would otherwise fall back to KFP's default minio:// root.
    pipeline_job["pipelineSpec"]["defaultPipelineRoot"] = kubeflow_config.resolved_pipeline_root
    _write_atomically(output, _serialize(pipeline_job, output))
    return output


def check_beam_runner(config: PipelineConfig) -> None:
    """beam_runner=portable names services of this machine, which no task of a compiled
    pipeline can be counted on to reach; tasks take Beam's runner from --beam-arg."""
    if config.beam_runner != "in_process":
        raise ConfigError(
            f"beam_runner={config.beam_runner}: applies to `run` only (its job service and worker pool are "
            "reached from this machine); a compiled pipeline's tasks take Beam's runner from --beam-arg, e.g. "
            "--beam-arg=--runner=PortableRunner --beam-arg=--job_endpoint=HOST:PORT (docs/scaling.md)")


def to_local_config(config: PipelineConfig) -> PipelineConfig:
    """The config for a local run of the compiled spec: local paths, first-use inputs made."""
    kubeflow_config_lib.check_pipeline_name(config.pipeline_name)
    inputs.prepare_inputs(config)
    return config


def check_image(image: Optional[str], flag: str = "--image", example: str = DEFAULT_IMAGE) -> None:
    if not image or not image.strip() or any(character.isspace() for character in image):
        raise ConfigError(f"{flag} {image!r} is not an image name; pass the pushed image, e.g. REGISTRY/{example}")


def check_gpu_image(gpu_image: Optional[str], gpus: int) -> None:
    """A Trainer asking for GPUs needs the image with TensorFlow's CUDA libraries; without GPUs
    no task would run that image, so naming one is a mistake too."""
    if gpus > 0 and gpu_image is None:
        raise ConfigError(
            f"trainer.gpus={gpus} runs the Trainer task in the GPU image: build it with `make image-gpu`, push it "
            f"and pass --gpu-image IMAGE, e.g. --gpu-image REGISTRY/{DEFAULT_GPU_IMAGE}")
    if gpus == 0 and gpu_image is not None:
        raise ConfigError(
            f"--gpu-image {gpu_image}: only a Trainer that asks for GPUs runs it; add --set trainer.gpus=1 "
            "or leave --gpu-image out")
    if gpu_image is not None:
        check_image(gpu_image, "--gpu-image", DEFAULT_GPU_IMAGE)


def task_images(image: str, gpu_image: Optional[str], gpus: int) -> str | dict[str, str]:
    """KubeflowV2DagRunnerConfig's default_image: one image for every task, or with GPUs TFX's map
    from component id to image, the Trainer's the GPU image and the rest the CPU image."""
    if gpus == 0:
        return image
    return {DEFAULT_IMAGE_PATH_KEY: image, steps.TRAINER.id: gpu_image}


def check_output_path(output: str) -> None:
    if not output.endswith(OUTPUT_SUFFIXES):
        raise ConfigError(
            f"--output '{output}': end it in .yaml for the pipeline spec or .json for the PipelineJob"
        )
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise ConfigError(f"--output '{output}': folder {directory} does not exist")


def request_trainer_gpus(pipeline: tfx.dsl.Pipeline, trainer_config: TrainerConfig) -> None:
    """Sets the Trainer task's GPU request in the compiled spec through TFX's platform config:
    `trainer.gpus` accelerators of type `trainer.accelerator` (pipeline/config/accelerators.py
    says what each backend does with the type)."""
    gpus, accelerator = trainer_config.gpus, trainer_config.accelerator
    if gpus < 0:
        raise ConfigError(f"trainer.gpus={gpus}: expected 0 or more GPUs")
    if gpus == 0:
        return
    trainer = next(component for component in pipeline.components if component.id == steps.TRAINER.id)
    trainer.with_platform_config(
        ResourceSpec(
            accelerator=ResourceSpec.AcceleratorConfig(
                # Newer KFP backends read resource_*, older ones the plain fields; kfp's compiler sets both.
                type=accelerator, count=gpus, resource_type=accelerator, resource_count=str(gpus)
            )
        )
    )


def drop_build_time_gate_baseline(pipeline: tfx.dsl.Pipeline) -> None:
    """Leaves out the Evaluator's `gate_baseline` (the model served when the pipeline is built,
    part of a local run's cache key): a spec compiled once would carry a stale one; on
    Kubeflow the Evaluator and Pusher are never cached instead (`disable_cache`)."""
    for component in pipeline.components:
        if component.id in steps.uncached():
            component.exec_properties.pop(GATE_BASELINE_KEY, None)


def disable_cache(pipeline_spec: dict[str, Any], task_names: tuple[str, ...]) -> None:
    """Turns KFP's cache off for these tasks of the compiled spec's root DAG."""
    tasks = pipeline_spec["root"]["dag"]["tasks"]
    for name in task_names:
        if name in tasks:
            tasks[name]["cachingOptions"] = {"enableCache": False}


def runtime_parameter_defaults(pipeline: tfx.dsl.Pipeline) -> dict[str, Any]:
    return {
        value.name: value.default
        for component in pipeline.components
        for value in component.exec_properties.values()
        if isinstance(value, RuntimeParameter)
    }


def declare_parameter_defaults(pipeline_spec: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Writes each runtime parameter's default into the spec's inputs, where KFP's UI and SDK read it.

    TFX puts the defaults only in the PipelineJob's runtimeConfig, which the `.yaml` spec lacks.
    """
    parameters = pipeline_spec["root"]["inputDefinitions"]["parameters"]
    for name, default in defaults.items():
        parameters[name].update(defaultValue=default, isOptional=True)


def _serialize(pipeline_job: dict[str, Any], output: str) -> str:
    """YAML: the PipelineSpec, as `kfp.compiler` writes it; JSON: the whole PipelineJob."""
    if output.endswith(".json"):
        return json.dumps(pipeline_job, indent=2, sort_keys=True) + "\n"
    header = f"# PIPELINE DEFINITION\n# Name: {pipeline_job['pipelineSpec']['pipelineInfo']['name']}\n"
    return header + yaml.dump(pipeline_job["pipelineSpec"], sort_keys=True)


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".compile-", suffix=os.path.basename(path))
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


