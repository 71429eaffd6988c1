"""Runs the pipeline on this machine: LocalDagRunner, ML Metadata in SQLite, Beam in process."""

import os
import time
from typing import Any, Optional

from tfx.orchestration.metadata import sqlite_metadata_connection_config
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components.config import PipelineConfig
from components.run_page.record import RunResult
from pipeline.beam.arguments import beam_args
from pipeline.environment import notice
from pipeline.pipeline import create_pipeline
from pipeline.results import metadata as results_metadata
from pipeline.run_page import config_changes
from pipeline.runners import failures, lock, preflight
from pipeline.runners.inputs import prepare_inputs
from pipeline.runners.progress import ComponentProgress


def run(config: PipelineConfig, extra_beam_args: Optional[list[str]] = None) -> RunResult:
    """Runs the pipeline under the pipeline root's lock; raises Interrupted on Ctrl-C,
    PipelineFailed when a component fails, ConfigError (lock.RootInUse included) on bad input."""
    preflight.run_all(config, extra_beam_args)
    cpu_notice = notice.check_trainer_device(config)
    if cpu_notice:
        print(cpu_notice, flush=True)
    changes = config_changes.of_config(config)  # before the inputs' paths are filled in
    with lock.hold(config.resolved_pipeline_root):
        try:
            prepare_inputs(config)
        except KeyboardInterrupt:
            raise Interrupted("preparing the inputs") from None
        return _run_components(config, extra_beam_args, changes)


def _run_components(config: PipelineConfig, extra_beam_args: Optional[list[str]],
                    changes: dict[str, tuple[Any, Any]]) -> RunResult:
    metadata_dir = os.path.dirname(config.metadata_path)
    os.makedirs(metadata_dir, exist_ok=True)
    pipeline = create_pipeline(
        config,
        beam_pipeline_args=beam_args(config, extra_beam_args),
        metadata_connection_config=sqlite_metadata_connection_config(
            config.metadata_path
        ),
        changes=changes,
    )
    order = [component.id for component in pipeline.components]
    started = time.monotonic()
    log_dir = failures.run_log_dir(config.resolved_pipeline_root)
    with ComponentProgress() as progress, failures.StepLogs(log_dir, lambda: progress.current) as logs:
        try:
            LocalDagRunner().run(pipeline)
        except KeyboardInterrupt:
            raise Interrupted(progress.current or "starting the pipeline") from None
        except Exception as error:
            log = logs.write_failure(progress.current, error)
            raise PipelineFailed(progress.current or "the pipeline", error, log) from error
    return results_metadata.from_metadata(
        config.resolved_pipeline_root, config.pipeline_name, config.profile, component_seconds=progress.seconds,
        order=order, wall_seconds=round(time.monotonic() - started, 2))


class PipelineFailed(RuntimeError):
    """A component failed: its cause on one line, and the log file that holds its traceback."""

    def __init__(self, component: str, error: BaseException, log_path: Optional[str] = None):
        where = f" (traceback in {log_path})" if log_path else ""
        super().__init__(f"{component} failed: {failures.one_line(error)}{where}")
        self.component = component
        self.log_path = log_path


class Interrupted(RuntimeError):
    """Ctrl-C (SIGINT) stopped the run; `stage` is the component (or step) it stopped."""

    def __init__(self, stage: str):
        super().__init__(f"interrupted during {stage}")
        self.stage = stage
