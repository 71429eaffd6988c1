"""Compiles the pipeline for Kubeflow Pipelines (KFP v2 backends, Vertex AI Pipelines).

KubeflowV2DagRunner writes the pipeline spec (`.yaml`) or a PipelineJob (`.json`). The
tunables are runtime parameters; everything else is fixed at compile time. Nothing is
written unless the whole compile succeeds. TFX is imported on the first compile, so the
CLI starts quickly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from typing import TYPE_CHECKING, Any, Optional

import yaml
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.config import DEFAULT_IMAGE, IN_PROCESS_BEAM_RUNNER, ConfigError, PipelineConfig

if TYPE_CHECKING:
    from tfx import v1 as tfx

TRAINER_ID = "Trainer"
GPU_RESOURCE = "nvidia.com/gpu"
PIPELINE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
URI_PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
OUTPUT_SUFFIXES = (".yaml", ".yml", ".json")
SERVING_SUBDIR = "serving_model"

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


@dataclasses.dataclass
class KubeflowConfig(PipelineConfig):
    """The config with its locations kept as the URIs given: the local config makes them absolute paths."""

    @property
    def resolved_pipeline_root(self) -> str:
        return self.pipeline_root.rstrip("/")

    @property
    def model_serving_dir(self) -> str:
        return f"{self.serving_dir.rstrip('/')}/{self.model_name}"


def compile_kubeflow(
    config: PipelineConfig,
    output: str,
    image: str = DEFAULT_IMAGE,
    beam_args: Optional[list[str]] = None,
    local: bool = False,
) -> str:
    """Writes the compiled pipeline to `output` and returns its path; raises ConfigError on bad input.

    `local` compiles for a run of the compiled spec on this machine (`run-compiled`, through
    kfp.local): local paths are allowed and the demo's first-use inputs are made now.
    """
    from tfx import v1 as tfx

    from pipeline import config_rules
    from pipeline.pipeline import create_pipeline

    if local:
        config_rules.check(config)  # before the demo's first-use inputs are made
        kubeflow_config = to_local_config(config)
    else:
        kubeflow_config = to_kubeflow_config(config)  # first: its messages name the fix for pods
        config_rules.check(config)
    check_output_path(output)
    check_image(image)
    try:
        pipeline = create_pipeline(kubeflow_config, beam_pipeline_args=task_beam_args(beam_args), runtime_parameters=True)
    except ValueError as error:  # the components' checks of their arguments
        raise ConfigError(f"the pipeline cannot be built: {error}") from error
    request_trainer_gpus(pipeline, config.trainer.gpus)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        )
    )
    defaults = runtime_parameter_defaults(pipeline)
    pipeline_job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    declare_parameter_defaults(pipeline_job["pipelineSpec"], defaults)
    _write_atomically(output, _serialize(pipeline_job, output))
    return output


def task_beam_args(beam_args: Optional[list[str]]) -> list[str]:
    """The Beam arguments of every task: `beam_args`, after a pin of Beam's in-process
    FnApiRunner unless they name a runner.

    Beam's DirectRunner (the default) first tries Prism, a binary it downloads when it can,
    which ignores the DirectRunner's settings; local runs pin FnApiRunner for the same reason.
    """
    beam_args = list(beam_args or [])
    if any(arg == "--runner" or arg.startswith("--runner=") for arg in beam_args):
        return beam_args
    return [f"--runner={IN_PROCESS_BEAM_RUNNER}", *beam_args]


def to_kubeflow_config(config: PipelineConfig) -> KubeflowConfig:
    """Checks what pods can reach and returns the config with URI locations; ConfigError otherwise."""
    check_pipeline_name(config.pipeline_name)
    check_pipeline_root(config.pipeline_root)
    check_data_source(config)
    check_base_weights(config.trainer.weights)
    values = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    values["serving_dir"] = kubeflow_serving_dir(config)
    return KubeflowConfig(**values)


def to_local_config(config: PipelineConfig) -> PipelineConfig:
    """The config for a local run of the compiled spec: local paths, first-use inputs made."""
    from pipeline import local_runner

    check_pipeline_name(config.pipeline_name)
    local_runner.prepare_inputs(config)
    return config


def check_pipeline_name(name: str) -> None:
    if not PIPELINE_NAME_PATTERN.fullmatch(name or ""):
        raise ConfigError(
            f"pipeline_name '{name}' is not a legal Kubeflow pipeline name: use lowercase letters, digits "
            "and '-', starting with a letter or digit, at most 128 characters (pattern [a-z0-9][a-z0-9-]*), "
            "e.g. --set pipeline_name=cats-vs-dogs"
        )


def check_pipeline_root(root: Optional[str]) -> None:
    if not root:
        raise ConfigError(
            "a Kubeflow compile needs --pipeline-root URI on storage the pods can reach, "
            "e.g. gs://BUCKET/pipelines or s3://BUCKET/pipelines"
        )
    if not is_remote_uri(root):
        raise ConfigError(
            f"pipeline root '{root}' is a local path; Kubeflow pods cannot see this machine's files. "
            "Pass --pipeline-root with object storage, e.g. gs://BUCKET/pipelines, s3://BUCKET/pipelines"
        )


def check_data_source(config: PipelineConfig) -> None:
    """TfdsExampleGen reads archives and folders from local disk only, so pods get the data from TFDS."""
    data = config.data
    if data.source != "tfds":
        raise ConfigError(
            f"data.source={data.source} reads a folder on this machine, which Kubeflow pods cannot see; "
            "use --set data.source=tfds (TFDS downloads cats_vs_dogs inside the pod)"
        )
    if data.archive:
        raise ConfigError(
            f"data.archive='{data.archive}' is read from local disk at compile time and Kubeflow pods cannot "
            "see it (the demo profile's generated sample included); use --set data.archive=none so TFDS "
            "downloads the archive inside the pod, and --set data.tfds_data_dir=gs://BUCKET/tensorflow_datasets "
            "to prepare it once and reuse it"
        )
    if data.tfds_data_dir and not is_remote_uri(data.tfds_data_dir):
        raise ConfigError(
            f"data.tfds_data_dir='{data.tfds_data_dir}' is a local path; use object storage the pods can reach, "
            "e.g. --set data.tfds_data_dir=gs://BUCKET/tensorflow_datasets, or none"
        )


def check_base_weights(weights: str) -> None:
    if weights == "imagenet" or weights.lower() in ("none", "") or is_remote_uri(weights):
        return
    raise ConfigError(
        f"trainer.weights='{weights}' is a local file that Kubeflow pods cannot see; upload it and use "
        "--set trainer.weights=gs://BUCKET/weights.h5 (or imagenet, downloaded by Keras inside the pod)"
    )


def kubeflow_serving_dir(config: PipelineConfig) -> str:
    """serving_dir if it is a URI; for the local default, <pipeline root>/serving_model."""
    if is_remote_uri(config.serving_dir):
        return config.serving_dir
    local_default = PipelineConfig.__dataclass_fields__["serving_dir"].default
    if config.serving_dir != local_default:
        raise ConfigError(
            f"serving_dir '{config.serving_dir}' is a local path that Kubeflow pods cannot reach; "
            "use --set serving_dir=gs://BUCKET/serving_model (or leave it unset for <pipeline root>/serving_model)"
        )
    return f"{config.pipeline_root.rstrip('/')}/{SERVING_SUBDIR}"


def check_image(image: Optional[str]) -> None:
    if not image or not image.strip() or any(character.isspace() for character in image):
        raise ConfigError(
            f"--image {image!r} is not an image name; pass the pushed image, e.g. REGISTRY/{DEFAULT_IMAGE}"
        )


def check_output_path(output: str) -> None:
    if not output.endswith(OUTPUT_SUFFIXES):
        raise ConfigError(
            f"--output '{output}': end it in .yaml for the pipeline spec or .json for the PipelineJob"
        )
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise ConfigError(f"--output '{output}': folder {directory} does not exist")


def request_trainer_gpus(pipeline: tfx.dsl.Pipeline, gpus: int) -> None:
    """Sets the Trainer task's GPU request in the compiled spec through TFX's platform config."""
    if gpus < 0:
        raise ConfigError(f"trainer.gpus={gpus}: expected 0 or more GPUs")
    if gpus == 0:
        return
    trainer = next(component for component in pipeline.components if component.id == TRAINER_ID)
    trainer.with_platform_config(
        ResourceSpec(
            accelerator=ResourceSpec.AcceleratorConfig(
                # Newer KFP backends read resource_*, older ones the plain fields; kfp's compiler sets both.
                type=GPU_RESOURCE, count=gpus, resource_type=GPU_RESOURCE, resource_count=str(gpus)
            )
        )
    )


def runtime_parameter_defaults(pipeline: tfx.dsl.Pipeline) -> dict[str, Any]:
    from tfx.orchestration.data_types import RuntimeParameter

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


def is_remote_uri(location: str) -> bool:
    return bool(URI_PATTERN.fullmatch(location)) and not location.lower().startswith("file://")
