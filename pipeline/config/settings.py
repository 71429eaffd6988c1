"""The pipeline's side of the settings: its named profiles, `--set` overrides, the keys and
values of a config, and the demo's input paths. The settings themselves, with their rules, are
declared in components/config.py."""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, Optional

from components.config import (REPO_ROOT, SAMPLE_ARCHIVE_NAME, DataConfig, EvaluatorConfig, PipelineConfig,
                               SampleConfig, TrainerConfig, setting_fields)

# The demo's two generated inputs, each at a path of its own: nothing is ever generated at a
# path a user names (a data.archive or trainer.weights elsewhere must exist and is only read).
DEFAULT_SAMPLE_ARCHIVE = os.path.join(REPO_ROOT, "data", "generated", SAMPLE_ARCHIVE_NAME)
GENERATED_BASE_WEIGHTS = os.path.join(REPO_ROOT, "data", "generated", "mobilenet_v3_small_64.weights.h5")
# The image docs/kubeflow.md builds; tag and push it to a registry the cluster can pull from.
DEFAULT_IMAGE = "cats-dogs-tfx:0.1.0"
# The same with TensorFlow's CUDA libraries (`make image-gpu`): the Trainer task's when it asks for GPUs.
DEFAULT_GPU_IMAGE = "cats-dogs-tfx-gpu:0.1.0"


# Where `python -m pipeline beam-services` listens by default: a name every machine resolves,
# and the ports Beam's job servers and SDK images use by default.
BEAM_SERVICES_HOST = "127.0.0.1"
BEAM_JOB_PORT = 8099
BEAM_WORKER_POOL_PORT = 50000
# The Beam runner of local runs and Kubeflow tasks unless the user names another (see
# pipeline.beam.arguments.beam_args): Beam's in-process runner, without the DirectRunner's
# Prism attempt.
IN_PROCESS_BEAM_RUNNER = "FnApiRunner"


class ConfigError(ValueError):
    """A bad profile name, override key or value; the message says what to use instead."""


def full_profile() -> PipelineConfig:
    """The recipe: TFDS cats_vs_dogs, Xception on ImageNet, 150x150, batch 32, 20 + 10 epochs."""
    return PipelineConfig(profile="full")


def demo_profile() -> PipelineConfig:
    """A few minutes on a 2-core CPU: the generated sample, a small base pre-trained offline."""
    return PipelineConfig(
        profile="demo",
        pipeline_name="cats-vs-dogs-demo",
        data=DataConfig(archive=DEFAULT_SAMPLE_ARCHIVE),
        sample=SampleConfig(enabled=True, pretrain_base=True),
        trainer=TrainerConfig(
            base="mobilenet_v3_small",
            weights=GENERATED_BASE_WEIGHTS,
            image_size=64,
            phase1_epochs=10,
            phase2_epochs=1,
        ),
        evaluator=EvaluatorConfig(accuracy_bar=0.7),
    )


PROFILES = {"full": full_profile, "demo": demo_profile}


def same_path(path: Optional[str], other: str) -> bool:
    return isinstance(path, str) and bool(path) and os.path.abspath(path) == os.path.abspath(other)


def generates_sample(config: PipelineConfig) -> bool:
    """The tfds source reads the generated sample, made on first use (pipeline/runners/inputs.py)."""
    return (config.sample.enabled and config.data.source == "tfds"
            and same_path(config.data.archive, DEFAULT_SAMPLE_ARCHIVE))


def generates_base(config: PipelineConfig) -> bool:
    """The Trainer loads the demo's generated base, pre-trained on first use."""
    return config.sample.pretrain_base and same_path(config.trainer.weights, GENERATED_BASE_WEIGHTS)


def sample_archive_unused(config: PipelineConfig) -> bool:
    """The folder source with the demo's sample archive left in data.archive: the archive is
    dropped before the run (no sample is made or read)."""
    return config.data.source == "folder" and same_path(config.data.archive, DEFAULT_SAMPLE_ARCHIVE)


def load_profile(name: str) -> PipelineConfig:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile '{name}': choose one of {', '.join(sorted(PROFILES))}")
    return PROFILES[name]()


def apply_overrides(config: PipelineConfig, assignments: list[str]) -> PipelineConfig:
    """Applies `section.field=value` (or `field=value`) assignments, type-checked per field."""
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set '{assignment}': expected KEY=VALUE, e.g. trainer.phase2_epochs=3")
        target, field_name = _resolve_field(config, key.strip())
        field_type = typing.get_type_hints(type(target))[field_name]
        setattr(target, field_name, _parse_value(key, raw.strip(), field_type))
    return config


def available_keys(config: PipelineConfig) -> list[str]:
    return list(setting_fields(type(config)))


def _resolve_field(config: PipelineConfig, key: str) -> tuple[Any, str]:
    parts = key.split(".")
    target: Any = config
    for part in parts[:-1]:
        target = getattr(target, part, None) if dataclasses.is_dataclass(target) else None
    if (
        len(parts) > 2
        or not dataclasses.is_dataclass(target)
        or parts[-1] not in {f.name for f in dataclasses.fields(target)}
        or dataclasses.is_dataclass(getattr(target, parts[-1]))
        or key == "profile"
    ):
        raise ConfigError(f"unknown config key '{key}'; known keys: {', '.join(available_keys(config))}")
    return target, parts[-1]


def _parse_value(key: str, raw: str, field_type: Any) -> Any:
    optional = type(None) in typing.get_args(field_type)
    base_types = [t for t in typing.get_args(field_type) if t is not type(None)] or [field_type]
    base = base_types[0]
    if optional and raw.lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            lowered = raw.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if base is int:
            return int(raw)
        if base is float:
            return float(raw)
        if base is str:
            return raw
    except ValueError:
        pass
    else:
        raise ConfigError(f"config key '{key}' has unsupported type {field_type}")
    expected = {bool: "true or false", int: "an integer", float: "a number"}[base]
    raise ConfigError(f"--set {key}={raw}: expected {expected}" + (" or none" if optional else ""))


def values_by_key(config: PipelineConfig) -> dict[str, Any]:
    """A config as {`--set` key: value}."""
    values = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            values.update({f"{field.name}.{key}": sub for key, sub in dataclasses.asdict(value).items()})
        elif field.name != "profile":
            values[field.name] = value
    return values


def profile_values(profile: str) -> dict[str, Any]:
    """The profile's config as {`--set` key: value}."""
    return values_by_key(load_profile(profile))


def changes_from_profile(config: PipelineConfig) -> dict[str, Any]:
    """Where a config differs from its profile, by `--set` key (taken before a run fills in
    paths of its own)."""
    defaults = profile_values(config.profile)
    return {key: value for key, value in values_by_key(config).items() if defaults.get(key) != value}


def profile_of_pipeline(pipeline_name: str) -> str:
    """The profile whose pipeline has this name ("unknown" when none has)."""
    for name, make in sorted(PROFILES.items()):
        if make().pipeline_name == pipeline_name:
            return name
    return "unknown"
