"""Checks that fail fast, before any component runs, with the input and the fix named."""

import os
import tempfile
from typing import Optional

from components.config import PipelineConfig
from pipeline.beam import services as beam_services
from pipeline.config import rules
from pipeline.config.settings import ConfigError
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


def check_beam_services(config: PipelineConfig) -> None:
    """With beam_runner=portable, the job service and the worker pool must answer, from this
    machine, within seconds: an address nothing serves would otherwise fail the first Beam
    step after a long wait, or hang it."""
    if config.beam_runner != "portable":
        return
    for key, probe, service in (("beam_job_endpoint", beam_services.probe_job_service, "job service"),
                                ("beam_worker_pool", beam_services.probe_worker_pool, "worker pool")):
        address = getattr(config, key)
        problem = probe(address)
        if problem:
            raise ConfigError(f"{key}={address}: {problem}; start a local {service} with `python -m pipeline "
                              f"beam-services` and use the --set lines it prints, or correct --set {key}=HOST:PORT")


def check_beam_args(config: PipelineConfig, extra_beam_args: list[str]) -> None:
    """beam_runner=portable sets the runner; a --beam-arg naming another would silently win."""
    runner_args = [arg for arg in extra_beam_args if arg == "--runner" or arg.startswith("--runner=")]
    if config.beam_runner == "portable" and runner_args:
        raise ConfigError(f"--beam-arg={runner_args[0]}: beam_runner=portable sets the runner "
                          "(PortableRunner); drop one of the two")


def run_all(config: PipelineConfig, extra_beam_args: Optional[list[str]] = None) -> None:
    rules.check(config)
    check_beam_args(config, extra_beam_args or [])
    check_writable_dir(config.resolved_pipeline_root, "pipeline root", "--pipeline-root")
    check_writable_dir(config.model_serving_dir, "serving folder", "--serving-dir")
    check_metadata_belongs_to(config)
    check_beam_services(config)
