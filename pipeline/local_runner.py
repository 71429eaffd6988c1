"""Runs the pipeline on this machine: LocalDagRunner, ML Metadata in SQLite, Beam in process."""

import os
import time
from typing import Optional

from tfx import v1 as tfx

from pipeline import preflight, report, run_lock
from pipeline.config import DEFAULT_IMAGE, IN_PROCESS_BEAM_RUNNER, PipelineConfig
from pipeline.pipeline import create_pipeline
from pipeline.progress import ComponentProgress

LOCAL_BEAM_RUNNER = IN_PROCESS_BEAM_RUNNER


def beam_args(config: PipelineConfig, extra: Optional[list[str]] = None) -> list[str]:
    """Beam's in-process runner in the configured mode (in memory by default); `extra` comes
    last and wins.

    The runner is pinned to FnApiRunner, the runner Beam's DirectRunner used to pick: since
    Beam 2.68 the DirectRunner first tries Prism, a Go binary it downloads from GitHub, which
    ignores --direct_running_mode; offline the attempt fails after a few tenths of a second
    per Beam pipeline. Pinning FnApiRunner is Beam's own advice (apache/beam#34612).

    Without a dependency flag, TFX packs its whole installation into a temporary sdist for
    every Beam component (seconds each, ~50 MB left behind in the temp folder each time).
    The local runner needs none of it and ignores the SDK image; a portable runner's workers
    (Flink, Spark, Dataflow) need the project's image, which is what this names.
    """
    args = [f"--runner={LOCAL_BEAM_RUNNER}", f"--direct_running_mode={config.beam_running_mode}"]
    if config.beam_running_mode == "multi_processing":
        args.append(f"--direct_num_workers={config.beam_workers or os.cpu_count() or 1}")
    return [*args, f"--sdk_container_image={DEFAULT_IMAGE}", *(extra or [])]


def prepare_inputs(config: PipelineConfig) -> None:
    """Generates the sample archive (and the demo's pre-trained base) on first use, and gives
    the sample a TFDS data dir of its own."""
    if not config.sample.enabled:
        return
    from data.sample_archive import ensure_sample_archive

    ensure_sample_archive(config.data.archive, images_per_class=config.sample.images_per_class)
    if config.data.tfds_data_dir is None:
        config.data.tfds_data_dir = os.path.join(
            config.resolved_pipeline_root, "tfds", f"sample-{config.sample.images_per_class}"
        )
    if config.sample.pretrain_base:
        from data.pretrained_base import ensure_pretrained_base

        ensure_pretrained_base(config.trainer.weights, base=config.trainer.base, image_size=config.trainer.image_size)


def run(config: PipelineConfig, extra_beam_args: Optional[list[str]] = None) -> report.RunReport:
    """Runs the pipeline under the pipeline root's lock; raises Interrupted on Ctrl-C,
    PipelineFailed when a component fails, ConfigError (run_lock.RootInUse included) on bad input."""
    preflight.run_all(config)
    with run_lock.hold(config.resolved_pipeline_root):
        try:
            prepare_inputs(config)
        except KeyboardInterrupt:
            raise Interrupted("preparing the inputs") from None
        return _run_components(config, extra_beam_args)


def _run_components(config: PipelineConfig, extra_beam_args: Optional[list[str]]) -> report.RunReport:
    metadata_dir = os.path.dirname(config.metadata_path)
    os.makedirs(metadata_dir, exist_ok=True)
    pipeline = create_pipeline(
        config,
        beam_pipeline_args=beam_args(config, extra_beam_args),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path
        ),
    )
    order = [component.id for component in pipeline.components]
    started = time.monotonic()
    with ComponentProgress() as progress:
        try:
            tfx.orchestration.LocalDagRunner().run(pipeline)
        except KeyboardInterrupt:
            raise Interrupted(progress.current or "starting the pipeline") from None
        except Exception as error:
            raise PipelineFailed(progress.current or "the pipeline", error) from error
    summary = report.build_report(config.metadata_path, config.pipeline_name, config.profile,
                                  progress.seconds, order)
    summary.wall_seconds = round(time.monotonic() - started, 2)
    return summary


class PipelineFailed(RuntimeError):
    def __init__(self, component: str, error: BaseException):
        super().__init__(f"{component} failed: {type(error).__name__}: {error}")
        self.component = component


class Interrupted(RuntimeError):
    """Ctrl-C (SIGINT) stopped the run; `stage` is the component (or step) it stopped."""

    def __init__(self, stage: str):
        super().__init__(f"interrupted during {stage}")
        self.stage = stage
