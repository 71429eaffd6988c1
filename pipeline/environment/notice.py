"""Before a local run's first component: where its Trainer will train. `trainer.gpus=N` needs N
usable GPUs here (a usage error otherwise); with no usable GPU, a Trainer that would take more
than a few minutes on this CPU is announced with the reason and its estimated time."""

from __future__ import annotations

from typing import Optional

from components.config import EVAL_SPLIT, TRAIN_SPLIT, PipelineConfig, TrainerConfig
from components.example_gen import sources as sources_lib
from components.example_gen import splits as splits_lib
from components.trainer import cost
from components.trainer import model as model_lib
from pipeline.config.settings import ConfigError, generates_sample
from pipeline.environment import gpu

# TFDS cats_vs_dogs 4.0.1: its one split, "train" (the Kaggle archive less its unreadable files).
TFDS_TRAIN_EXAMPLES = 23_262
# A Trainer estimated above this on the CPU is announced.
ANNOUNCE_ABOVE_S = 300
# A Trainer whose work would take less than this at GATE_GFLOPS_PER_S (a fast server CPU) is
# not measured: the demo's is about 0.1 s of it, the full profile's about an hour.
MEASURE_ABOVE_S = 60
GATE_GFLOPS_PER_S = 200
# A training step (forward, backward, update) costs about three forward passes.
TRAIN_STEP_FORWARD_PASSES = 3


def check_trainer_device(config: PipelineConfig) -> Optional[str]:
    """Raises ConfigError when trainer.gpus asks for more GPUs than are usable; returns the
    CPU notice to print, or None (a usable GPU, or a Trainer of minutes)."""
    report = gpu.probe(needed=config.trainer.gpus)
    if config.trainer.gpus > 0 and not report.usable:
        raise ConfigError(f"trainer.gpus={config.trainer.gpus}: no usable GPU here: {gpu.one_line(report)}; "
                          "or --set trainer.gpus=0 to train on the CPU")
    if report.usable:
        return None
    sizes = nominal_split_sizes(config)
    train_images, eval_images = sizes[TRAIN_SPLIT], sizes.get(EVAL_SPLIT, 0)
    if work_gflops(config.trainer, train_images, eval_images) / GATE_GFLOPS_PER_S < MEASURE_ABOVE_S:
        return None
    print("[pipeline] no usable GPU: measuring the Trainer's cost on this CPU (a minute or so)", flush=True)
    rates = cost.measure(config.trainer)
    estimate = cost.trainer_time(config.trainer, train_images, eval_images, rates)
    if estimate.total_s < ANNOUNCE_ABOVE_S:
        return None
    return cpu_notice(report, estimate, rates, train_images, eval_images)


def cpu_notice(report: gpu.GpuReport, estimate: cost.TrainerTime, rates: cost.Rates,
               train_images: int, eval_images: int) -> str:
    return "\n".join([
        f"[pipeline] the Trainer trains on the CPU: {report.reason}",
        f"[pipeline]   fix: {report.fix} (python -m pipeline doctor shows every check)",
        f"[pipeline]   estimated Trainer time on this machine: {duration(estimate.total_s)} (phase 1 "
        f"{duration(estimate.phase1_s)}, phase 2 {duration(estimate.phase2_s)}; {train_images} training and "
        f"{eval_images} validation images at {rates.base_images_per_s:.1f} base and {rates.train_images_per_s:.1f} "
        "fine-tuning images/s, measured now)",
    ])


def nominal_split_sizes(config: PipelineConfig) -> dict[str, int]:
    """Each split's size from its expression over the source's size, before ExampleGen reads it."""
    data = config.data
    if data.source == sources_lib.SOURCE_FOLDER:
        source = sources_lib.folder_source_split(data.folder)
    elif generates_sample(config):
        total = 2 * config.sample.images_per_class
        source = {"train": splits_lib.SourceSplit(total, [total])}
    elif data.archive:
        source = sources_lib.archive_source_split(data.archive)
    else:
        source = {"train": splits_lib.SourceSplit(TFDS_TRAIN_EXAMPLES, [TFDS_TRAIN_EXAMPLES])}
    ranges = splits_lib.resolve_ranges(data.split_expressions(), source)
    return {name: sum(end - start for _, start, end in parts) for name, parts in ranges.items()}


def work_gflops(trainer: TrainerConfig, train_images: int, eval_images: int) -> float:
    """The Trainer's floating-point work, from the base's profiled cost per image (scaled by
    pixel count) and the same passes cost.trainer_time counts."""
    per_image = model_lib.base_spec(trainer.base).gflops_224 * (trainer.image_size / 224) ** 2
    unit = cost.Rates(base_images_per_s=1.0, train_images_per_s=1.0 / TRAIN_STEP_FORWARD_PASSES)
    return cost.trainer_time(trainer, train_images, eval_images, unit).total_s * per_image


def duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
