"""Typed configuration of the components, passed to them through `custom_config`."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

TFDS_DATASET = "cats_vs_dogs"
MIXED_PRECISION_SETTINGS = ("auto", "true", "false")
SAMPLE_ARCHIVE_NAME = "kagglecatsanddogs_5340.zip"
# The Examples artifact's split names.
TRAIN_SPLIT, EVAL_SPLIT, TEST_SPLIT = "train", "eval", "test"
# The runtime tunables, by config section: the settings a compiled pipeline exposes as runtime
# parameters (a user may change them per run). Each is an exec property of the section's
# component, of the same name and type; the component specs, the pipeline's wiring, the rules
# and the run page all read this one declaration (pipeline/config/tunables.py).
RUNTIME_TUNABLES: dict[str, dict[str, type]] = {
    "trainer": {"phase1_epochs": int, "phase2_epochs": int, "phase1_learning_rate": float,
                "phase2_learning_rate": float},
    "evaluator": {"accuracy_bar": float},
}


@dataclasses.dataclass
class DataConfig:
    """Where the images come from and how they are split."""

    # "tfds": TFDS's cats_vs_dogs builder (download, or `archive` as manual_dir source);
    # "folder": a folder with exactly two class sub-folders.
    source: str = "tfds"
    # Local kagglecatsanddogs_5340.zip; None downloads it (tfds source only).
    archive: Optional[str] = None
    # Folder with two class sub-folders (folder source only).
    folder: Optional[str] = None
    # TFDS data dir; None uses TFDS's default (~/tensorflow_datasets).
    tfds_data_dir: Optional[str] = None
    train_split: str = "train[:40%]"
    eval_split: str = "train[40%:50%]"
    test_split: str = "train[50%:60%]"
    # Verify the real archive's size and sha256 before preparing.
    validate_checksum: bool = False
    # Gzip the examples: JPEG bytes shrink by ~4% for ~3 ms of CPU per image.
    gzip_output: bool = False

    def split_expressions(self) -> dict[str, str]:
        return {TRAIN_SPLIT: self.train_split, EVAL_SPLIT: self.eval_split, TEST_SPLIT: self.test_split}


@dataclasses.dataclass
class TrainerConfig:
    """The recipe's model and its two training phases."""

    base: str = "xception"  # keras.applications base: xception, mobilenet_v3_small, efficientnet_b0
    # "imagenet" (Keras download and cache), a weights file path or URI (gs://...), or "none".
    weights: str = "imagenet"
    image_size: int = 150
    batch_size: int = 32
    phase1_epochs: int = 20
    phase1_learning_rate: float = 1e-3
    # Phase 1 trains the head on the frozen base's features, computed once per image for each
    # of `phase1_augmented_views` augmentation draws (epoch e on draw e mod K), instead of
    # running the base every epoch (components/trainer/feature_cache.py).
    phase1_feature_cache: bool = True
    phase1_augmented_views: int = 4
    phase2_epochs: int = 10
    phase2_learning_rate: float = 1e-5
    # 0 unfreezes the whole base in phase 2; N > 0 only its top N layers.
    fine_tune_top_layers: int = 0
    dropout: float = 0.2
    # float16 compute, float32 weights and logit (components/trainer/devices.py): "auto" where
    # every GPU the Trainer sees has compute capability 7.0 or newer, "true" on any GPU, "false".
    mixed_precision: str = "auto"
    # GPUs the Trainer uses: requested for its task on Kubeflow; a local run needs that many.
    gpus: int = 0
    # The accelerator type of that request in the compiled spec: a Kubernetes resource for
    # open-source KFP (NVIDIA's device plugin's nvidia.com/gpu) or a Vertex AI GPU (NVIDIA_L4, ...).
    accelerator: str = "nvidia.com/gpu"
    seed: int = 1337
    # The served signatures refuse an image whose header declares more pixels (width x height,
    # all frames of a GIF), before decoding it: 40 megapixels decode to 120 MB.
    max_image_pixels: int = 40_000_000

    # Where the Kubeflow task runs, not how run_fn trains: left out of run_fn's custom_config.
    COMPILE_TIME_ONLY = ("accelerator",)

    def to_custom_config(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if key not in self.COMPILE_TIME_ONLY}

    @classmethod
    def from_custom_config(cls, custom_config: Optional[dict[str, Any]]) -> "TrainerConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in (custom_config or {}).items() if k in known}
        return cls(**values)
