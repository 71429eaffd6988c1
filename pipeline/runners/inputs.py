"""What every runner prepares before the pipeline runs: the demo's first-use inputs (the
generated sample archive and the pre-trained base, each at its own path) and the Beam
arguments of local runs."""

import os
from typing import Optional

from data.pretrained_base import ensure_pretrained_base
from data.sample_archive import ensure_sample_archive
from pipeline.config.settings import (DEFAULT_IMAGE, DEFAULT_SAMPLE_ARCHIVE, GENERATED_BASE_WEIGHTS,
                                      IN_PROCESS_BEAM_RUNNER, PipelineConfig, generates_base, generates_sample,
                                      sample_archive_unused)

LOCAL_BEAM_RUNNER = IN_PROCESS_BEAM_RUNNER
# The pip freeze Beam runs to stage a list of the submitting environment's packages costs a
# second or two per Beam step and tells external workers on this machine nothing.
NO_SUBMISSION_ENV_LISTING = "--experiments=disable_logging_submission_environment"


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


def prepare_inputs(config: PipelineConfig) -> None:
    """Makes the demo's generated inputs on first use, each only at its own path (the settings'
    rules have refused any other path that does not exist, so nothing is written where a user
    pointed): the sample archive, with a TFDS data dir of its own, when the tfds source reads
    it; the pre-trained base when trainer.weights names it. With data.source=folder the
    profile's sample archive is dropped: no archive is made or read."""
    if sample_archive_unused(config):
        config.data.archive = None
    if generates_sample(config):
        ensure_sample_archive(DEFAULT_SAMPLE_ARCHIVE, images_per_class=config.sample.images_per_class)
        if config.data.tfds_data_dir is None:
            config.data.tfds_data_dir = os.path.join(
                config.resolved_pipeline_root, "tfds", f"sample-{config.sample.images_per_class}"
            )
    if generates_base(config):
        ensure_pretrained_base(GENERATED_BASE_WEIGHTS, base=config.trainer.base, image_size=config.trainer.image_size)
