"""What every runner prepares before the pipeline runs: the demo's first-use inputs (the
generated sample archive and the pre-trained base, each at its own path)."""

import os

from components.config import PipelineConfig
from data.pretrained_base import ensure_pretrained_base
from data.sample_archive import ensure_sample_archive
from pipeline.config.settings import (DEFAULT_SAMPLE_ARCHIVE, GENERATED_BASE_WEIGHTS, generates_base, generates_sample,
                                      sample_archive_unused)


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
