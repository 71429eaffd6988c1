"""What every runner prepares before the pipeline runs: the demo's first-use inputs (the
generated sample archive and the pre-trained base) and the Beam arguments of local runs."""

import os
from typing import Optional

from data.pretrained_base import ensure_pretrained_base
from data.sample_archive import ensure_sample_archive
from pipeline.config.settings import DEFAULT_IMAGE, IN_PROCESS_BEAM_RUNNER, PipelineConfig

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
    ensure_sample_archive(config.data.archive, images_per_class=config.sample.images_per_class)
    if config.data.tfds_data_dir is None:
        config.data.tfds_data_dir = os.path.join(
            config.resolved_pipeline_root, "tfds", f"sample-{config.sample.images_per_class}"
        )
    if config.sample.pretrain_base:
        ensure_pretrained_base(config.trainer.weights, base=config.trainer.base, image_size=config.trainer.image_size)
