"""Every Beam argument the pipeline's Beam steps get: a local run's (Beam's in-process runner,
or beam_runner=portable's job service and worker pool) and a compiled task's."""

import os
from typing import Optional

from components.config import PipelineConfig
from pipeline.config.settings import DEFAULT_IMAGE, IN_PROCESS_BEAM_RUNNER

LOCAL_BEAM_RUNNER = IN_PROCESS_BEAM_RUNNER
# The pip freeze Beam runs to stage a list of the submitting environment's packages costs a
# second or two per Beam step and tells external workers on this machine nothing.
NO_SUBMISSION_ENV_LISTING = "--experiments=disable_logging_submission_environment"
# The flags by which TFX sees that Beam's workers get their code from elsewhere
# (tfx.utils.dependency_utils.make_beam_dependency_flags).
DEPENDENCY_FLAGS = {"--extra_package", "--extra_packages", "--setup_file", "--requirements_file",
                    "--worker_harness_container_image", "--sdk_container_image"}


def beam_args(config: PipelineConfig, extra: Optional[list[str]] = None) -> list[str]:
    """Beam's in-process runner in the configured mode (in memory by default), or with
    beam_runner=portable Beam's PortableRunner: the job service at beam_job_endpoint runs
    each Beam step on SDK workers the worker pool at beam_worker_pool starts (an EXTERNAL
    environment). `extra` comes last and wins.

    The runner is pinned to FnApiRunner, the runner Beam's DirectRunner used to pick: since
    Beam 2.68 the DirectRunner first tries Prism, a Go binary it downloads from GitHub, which
    ignores --direct_running_mode; offline the attempt fails after a few tenths of a second
    per Beam pipeline. Pinning FnApiRunner is Beam's own advice (apache/beam#34612).

    Without a dependency flag, TFX packs its whole installation into a temporary sdist for
    every Beam component (seconds each, ~50 MB left behind in the temp folder each time).
    Neither the in-process runner nor the external workers of beam_runner=portable (started
    by a worker pool in an environment with the project installed) need it, and both ignore
    the SDK image; workers that a cluster starts from an image (Flink, Spark, Dataflow) need
    the project's image, which is what this names.
    """
    if config.beam_runner == "portable":
        args = portable_beam_args(config.beam_job_endpoint, config.beam_worker_pool)
        return [*args, f"--sdk_container_image={DEFAULT_IMAGE}", *(extra or [])]
    args = [f"--runner={LOCAL_BEAM_RUNNER}", f"--direct_running_mode={config.beam_running_mode}"]
    if config.beam_running_mode == "multi_processing":
        args.append(f"--direct_num_workers={config.beam_workers or os.cpu_count() or 1}")
    return [*args, f"--sdk_container_image={DEFAULT_IMAGE}", *(extra or [])]


def portable_beam_args(job_endpoint: str, worker_pool: str) -> list[str]:
    """Beam's portable runner with an external worker pool: what `beam_runner=portable` sets."""
    return ["--runner=PortableRunner", f"--job_endpoint={job_endpoint}", "--environment_type=EXTERNAL",
            f"--environment_config={worker_pool}", NO_SUBMISSION_ENV_LISTING]


def task_beam_args(requested: Optional[list[str]], image: str = DEFAULT_IMAGE) -> list[str]:
    """The Beam arguments of every task: `requested`, after a pin of Beam's in-process
    FnApiRunner unless they name a runner, and the task's image as Beam's SDK image unless they
    name a dependency of their own.

    Beam's DirectRunner (the default) first tries Prism, a binary it downloads when it can,
    which ignores the DirectRunner's settings; local runs pin FnApiRunner for the same reason.
    Without a dependency flag TFX packs its installation into a temporary sdist in every Beam
    task (see beam_args); the image already holds it.
    """
    requested = list(requested or [])
    names = {arg.split("=", 1)[0] for arg in requested}
    pinned = [] if "--runner" in names else [f"--runner={IN_PROCESS_BEAM_RUNNER}"]
    dependency = [] if names & DEPENDENCY_FLAGS else [f"--sdk_container_image={image}"]
    return [*pinned, *requested, *dependency]
