"""The settings a run changed from its profile, as its page shows them: {`--set` key: (the
profile's value, the run's)}. A run knows its own; a run read back from ML Metadata (`report`)
has the values its executions recorded."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from components.config import PipelineConfig
from components.run_page import outcome
from pipeline import steps
from pipeline.config import settings
from pipeline.config import tunables


def of_config(config: PipelineConfig) -> dict[str, tuple[Any, Any]]:
    """Where a config differs from its profile (taken before a run fills in paths of its own)."""
    return with_profile_values(settings.changes_from_profile(config), config.profile)


def with_profile_values(changed: dict[str, Any], profile: str) -> dict[str, tuple[Any, Any]]:
    defaults = settings.profile_values(profile) if profile in settings.PROFILES else {}
    return {key: (defaults.get(key), value) for key, value in sorted(changed.items())}


def of_record(execution_properties: dict[str, dict[str, Any]], profile: str) -> dict[str, tuple[Any, Any]]:
    """The recorded values that differ from the profile's ({} for an unknown profile)."""
    if profile not in settings.PROFILES:
        return {}
    defaults = settings.profile_values(profile)
    return {key: (defaults[key], value) for key, value in sorted(recorded_config(execution_properties).items())
            if key in defaults and not _same_value(defaults[key], value)}


def recorded_config(execution_properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The config fields the run's executions recorded, by `--set` key."""
    values: dict[str, Any] = {}
    trainer = execution_properties.get(steps.TRAINER.id, {})
    for key, value in json.loads(trainer.get("custom_config") or "{}").items():
        values[f"trainer.{key}"] = value
    for tunable in tunables.TUNABLES:
        recorded = execution_properties.get(tunable.component, {})
        if tunable.name in recorded:
            values[tunable.key] = recorded[tunable.name]
    evaluator = execution_properties.get(steps.EVALUATOR.id, {})
    drop = outcome.max_accuracy_drop(evaluator.get("eval_config"))
    if drop is not None:
        values["evaluator.max_accuracy_drop"] = drop
    example_gen = execution_properties.get(steps.EXAMPLE_GEN.id, {})
    for split in json.loads(example_gen.get("input_config") or "{}").get("splits", []):
        values[f"data.{split['name']}_split"] = split["pattern"]
    for key in ("source", "archive", "folder"):
        if example_gen.get(key):
            values[f"data.{key}"] = example_gen[key]
    for key in ("gzip_output", "validate_checksum"):
        if key in example_gen:
            values[f"data.{key}"] = str(example_gen[key]).lower() in ("true", "1")
    return values


def _same_value(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        return None not in (expected, actual) and math.isclose(float(expected), float(actual), rel_tol=1e-9)
    if isinstance(expected, str) and isinstance(actual, str) and os.sep in expected:
        return os.path.abspath(expected) == os.path.abspath(actual)
    return expected == actual
