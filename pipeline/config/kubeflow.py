"""What Kubeflow pods can reach: a compile for a cluster refuses settings that name this
machine's files, with the fix for pods in each message, and keeps locations as the URIs given."""

from __future__ import annotations

import dataclasses
from typing import Optional

from components.config import PIPELINE_NAME_PATTERN, PipelineConfig
from pipeline.config.locations import is_remote_uri
from pipeline.config.settings import ConfigError

SERVING_SUBDIR = "serving_model"
# Object stores KFP installs offer that the tasks' TensorFlow cannot read or write: every
# component reads and writes its artifacts through tf.io.gfile.
_NO_S3 = ("TensorFlow 2.21 has no S3 filesystem (it moved to tensorflow-io, which publishes no wheel for Python "
          "3.13), so no task could read or write its artifacts there; use a gs:// bucket "
          "(--pipeline-root gs://BUCKET/pipelines), with credentials for the pods as docs/kubeflow.md says")
UNREADABLE_SCHEMES = {
    "s3": _NO_S3,
    "minio": "KFP's default MinIO root is S3 underneath: " + _NO_S3,
}


@dataclasses.dataclass
class KubeflowConfig(PipelineConfig):
    """The config with its locations kept as the URIs given: the local config makes them absolute paths."""

    @property
    def resolved_pipeline_root(self) -> str:
        return self.pipeline_root.rstrip("/")

    @property
    def model_serving_dir(self) -> str:
        return f"{self.serving_dir.rstrip('/')}/{self.model_name}"


def to_kubeflow_config(config: PipelineConfig) -> KubeflowConfig:
    """Checks what pods can reach and returns the config with URI locations; ConfigError otherwise."""
    check_pipeline_name(config.pipeline_name)
    check_pipeline_root(config.pipeline_root)
    check_data_source(config)
    check_base_weights(config.trainer.weights)
    values = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    values["serving_dir"] = kubeflow_serving_dir(config)
    for what, uri in (("serving_dir", values["serving_dir"]), ("data.tfds_data_dir", config.data.tfds_data_dir),
                      ("trainer.weights", config.trainer.weights)):
        if uri:
            check_readable_scheme(what, uri)
    return KubeflowConfig(**values)


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
            "a Kubeflow compile needs --pipeline-root URI on storage the pods can reach, e.g. gs://BUCKET/pipelines"
        )
    if not is_remote_uri(root):
        raise ConfigError(
            f"pipeline root '{root}' is a local path; Kubeflow pods cannot see this machine's files. "
            "Pass --pipeline-root with object storage, e.g. gs://BUCKET/pipelines"
        )
    check_readable_scheme("pipeline root", root)


def check_readable_scheme(what: str, uri: str) -> None:
    """Refuses a URI whose storage the tasks' TensorFlow cannot reach."""
    scheme = uri.split("://", 1)[0].lower() if is_remote_uri(uri) else ""
    if scheme in UNREADABLE_SCHEMES:
        raise ConfigError(f"{what} '{uri}': {UNREADABLE_SCHEMES[scheme]}")


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
