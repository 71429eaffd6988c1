"""Checks that fail fast, before any component runs, with the input and the fix named."""

import os
import tempfile

from pipeline import report
from pipeline.config import BEAM_RUNNING_MODES, ConfigError, PipelineConfig


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
    names = report.pipeline_names(report.open_store(config.metadata_path))
    others = [name for name in names if name != config.pipeline_name]
    if others:
        raise ConfigError(
            f"pipeline root '{config.resolved_pipeline_root}' holds ML Metadata of another pipeline "
            f"({', '.join(others)}), not '{config.pipeline_name}'; use another --pipeline-root"
        )


def check_data_source(config: PipelineConfig) -> None:
    data = config.data
    if data.source not in ("tfds", "folder"):
        raise ConfigError(f"data.source '{data.source}' is unknown: use tfds or folder")
    if data.source == "folder" and not data.folder:
        raise ConfigError("data.source=folder needs data.folder=PATH (a folder with two class sub-folders)")
    if data.source == "tfds" and data.archive and not config.sample.enabled and not os.path.isfile(data.archive):
        raise ConfigError(
            f"archive '{data.archive}' does not exist; pass the path of kagglecatsanddogs_5340.zip with "
            "--archive, or --set data.archive=none to download it"
        )


def check_beam_settings(config: PipelineConfig) -> None:
    if config.beam_running_mode not in BEAM_RUNNING_MODES:
        raise ConfigError(
            f"beam_running_mode '{config.beam_running_mode}' is unknown: "
            f"use --set beam_running_mode={' or '.join(BEAM_RUNNING_MODES)}"
        )
    if config.beam_workers < 0:
        raise ConfigError(f"beam_workers {config.beam_workers} is negative: use 0 (one per CPU core) or a count")


def run_all(config: PipelineConfig) -> None:
    check_beam_settings(config)
    check_data_source(config)
    check_writable_dir(config.resolved_pipeline_root, "pipeline root", "--pipeline-root")
    check_writable_dir(config.model_serving_dir, "serving folder", "--serving-dir")
    check_metadata_belongs_to(config)
