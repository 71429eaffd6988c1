"""Checks that fail fast, before any component runs, with the input and the fix named."""

import os
import tempfile

from pipeline.config import rules
from pipeline.config.settings import ConfigError, PipelineConfig
from pipeline.results import metadata as results_metadata


def check_writable_dir(path: str, what: str, flag: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise ConfigError(f"{what} '{path}' is not writable ({error.strerror}); choose another with {flag}") from None


def check_metadata_belongs_to(config: PipelineConfig) -> None:
    """A pipeline root is one pipeline's: mixing two in one ML Metadata store mixes baselines."""
    if not os.path.exists(config.metadata_path):
        return
    names = results_metadata.pipeline_names(results_metadata.open_store(config.metadata_path))
    others = [name for name in names if name != config.pipeline_name]
    if others:
        raise ConfigError(
            f"pipeline root '{config.resolved_pipeline_root}' holds ML Metadata of another pipeline "
            f"({', '.join(others)}), not '{config.pipeline_name}'; use another --pipeline-root"
        )


def run_all(config: PipelineConfig) -> None:
    rules.check(config)
    check_writable_dir(config.resolved_pipeline_root, "pipeline root", "--pipeline-root")
    check_writable_dir(config.model_serving_dir, "serving folder", "--serving-dir")
    check_metadata_belongs_to(config)
