"""The settings room: every section of the configuration (data, sample, trainer, evaluator,
infra_validator) and the top-level settings (PipelineConfig), each setting declared once, by
`setting(...)`, with its rule beside it.

A rule is a check of the value (and of the whole config, where it depends on another setting),
what the message says is allowed, and an example that works; pipeline/config/rules.py applies
them all before any component runs. A rule that needs a step's code or the pipeline's, which
this shared module cannot import, is in that module's table, and its field names it
(`rule=IN_PIPELINE_RULES`). A runtime tunable is marked beside its field too (`tunable=True`):
RUNTIME_TUNABLES follows.

The components rebuild their sections from `custom_config` (DataConfig, TrainerConfig);
profiles, `--set` overrides and the demo's input paths are the pipeline's
(pipeline/config/settings.py).
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from typing import Any, Callable, Optional, Union

from components.field_rules import (IN_PIPELINE_RULES, RULE, TUNABLE, SettingRule, flag, int_between, integer,
                                    matches, not_an_existing_file, number_in, one_of, path_or_none, setting)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TFDS_DATASET = "cats_vs_dogs"
SAMPLE_ARCHIVE_NAME = "kagglecatsanddogs_5340.zip"
# The Examples artifact's split names.
TRAIN_SPLIT, EVAL_SPLIT, TEST_SPLIT = "train", "eval", "test"

LEARNING_RATE = "a number above 0 and at most 1"
FRACTION = "a number from 0 to 1"
MAX_EPOCHS = 1000
DATA_SOURCES = ("tfds", "folder")
MIXED_PRECISION_SETTINGS = ("auto", "true", "false")
MIN_SAMPLE_IMAGES = 20  # per class: each 10% split of the sample then holds a few images of each
MAX_SAMPLE_IMAGES = 12_500  # per class, as in the real archive


@dataclasses.dataclass
class DataConfig:
    """Where the images come from and how they are split."""

    # "tfds": TFDS's cats_vs_dogs builder (download, or `archive` as manual_dir source);
    # "folder": a folder with exactly two class sub-folders.
    source: str = setting("tfds", check=one_of(*DATA_SOURCES), allowed=" or ".join(DATA_SOURCES), example="tfds")
    # Local kagglecatsanddogs_5340.zip; None downloads it (tfds source only). Its rule reads the
    # archive as ExampleGen does (components/example_gen/sources.py).
    archive: Optional[str] = setting(None, rule=IN_PIPELINE_RULES)
    # Folder with two class sub-folders (folder source only); its rule lists them as ExampleGen does.
    folder: Optional[str] = setting(None, rule=IN_PIPELINE_RULES)
    # TFDS data dir; None uses TFDS's default (~/tensorflow_datasets).
    tfds_data_dir: Optional[str] = setting(None, check=not_an_existing_file, example="none",
                                           allowed="none (TFDS's default) or a folder or URI, not a file")
    # TFDS split expressions; their rules parse them with TFDS's parser (components/example_gen/splits.py).
    train_split: str = setting("train[:40%]", rule=IN_PIPELINE_RULES)
    eval_split: str = setting("train[40%:50%]", rule=IN_PIPELINE_RULES)
    test_split: str = setting("train[50%:60%]", rule=IN_PIPELINE_RULES)
    # Verify the real archive's size and sha256 before preparing.
    validate_checksum: bool = flag(False, example="true")
    # Gzip the examples: JPEG bytes shrink by ~4% for ~3 ms of CPU per image.
    gzip_output: bool = flag(False, example="false")

    def split_expressions(self) -> dict[str, str]:
        return {TRAIN_SPLIT: self.train_split, EVAL_SPLIT: self.eval_split, TEST_SPLIT: self.test_split}


@dataclasses.dataclass
class SampleConfig:
    """The demo's generated inputs, made on first use at their own paths (DEFAULT_SAMPLE_ARCHIVE,
    GENERATED_BASE_WEIGHTS of pipeline/config/settings.py) and only there."""

    # Generate the sample archive when data.archive names DEFAULT_SAMPLE_ARCHIVE (source tfds).
    enabled: bool = flag(False, example="true")
    images_per_class: int = integer(450, MIN_SAMPLE_IMAGES, MAX_SAMPLE_IMAGES, example="450")
    # Pre-train the base on other generated images when trainer.weights names
    # GENERATED_BASE_WEIGHTS: the offline stand-in for ImageNet weights (data/pretrained_base.py).
    pretrain_base: bool = flag(False, example="true")


@dataclasses.dataclass
class TrainerConfig:
    """The recipe's model and its two training phases."""

    # A keras.applications base: xception, mobilenet_v3_small, efficientnet_b0, ... Its rule, and
    # those of image_size and fine_tune_top_layers, read the bases (components/trainer/model.py).
    base: str = setting("xception", rule=IN_PIPELINE_RULES)
    # "imagenet" (Keras download and cache), a weights file path or URI (gs://...), or "none".
    weights: str = setting("imagenet", rule=IN_PIPELINE_RULES)
    image_size: int = setting(150, rule=IN_PIPELINE_RULES)
    batch_size: int = integer(32, 1, 4096, example="32")
    phase1_epochs: int = integer(20, 0, MAX_EPOCHS, example="20", tunable=True)
    phase1_learning_rate: float = setting(1e-3, check=number_in(0, 1, low_open=True), allowed=LEARNING_RATE,
                                          example="1e-3", tunable=True)
    # Phase 1 trains the head on the frozen base's features, computed once per image for each
    # of `phase1_augmented_views` augmentation draws (epoch e on draw e mod K), instead of
    # running the base every epoch (components/trainer/feature_cache.py).
    phase1_feature_cache: bool = flag(True, example="true")
    phase1_augmented_views: int = integer(4, 1, 100, example="4", note="augmentation draws of each training image")
    phase2_epochs: int = integer(10, 0, MAX_EPOCHS, example="10", tunable=True)
    phase2_learning_rate: float = setting(1e-5, check=number_in(0, 1, low_open=True), allowed=LEARNING_RATE,
                                          example="1e-5", tunable=True)
    # 0 unfreezes the whole base in phase 2; N > 0 only its top N layers.
    fine_tune_top_layers: int = setting(0, rule=IN_PIPELINE_RULES)
    dropout: float = setting(0.2, check=number_in(0, 1, high_open=True), example="0.2",
                             allowed="a number from 0 up to (not including) 1")
    # float16 compute, float32 weights and logit (components/trainer/devices.py): "auto" where
    # every GPU the Trainer sees has compute capability 7.0 or newer, "true" on any GPU, "false".
    mixed_precision: str = setting("auto", check=one_of(*MIXED_PRECISION_SETTINGS), example="auto", allowed=(
        "auto (on GPUs of compute capability 7.0 or newer), true (on any GPU) or false"))
    # GPUs the Trainer uses: requested for its task on Kubeflow; a local run needs that many.
    gpus: int = integer(0, 0, 16, example="1")
    # The accelerator type of that request in the compiled spec: a Kubernetes resource for
    # open-source KFP (NVIDIA's device plugin's nvidia.com/gpu) or a Vertex AI GPU (NVIDIA_L4, ...);
    # its rule reads the installed Vertex AI client's names (pipeline/config/accelerators.py).
    accelerator: str = setting("nvidia.com/gpu", rule=IN_PIPELINE_RULES)
    seed: int = integer(1337, 0, 2**31 - 1, example="1337")
    # The served signatures refuse an image whose header declares more pixels (width x height,
    # all frames of a GIF), before decoding it: 40 megapixels decode to 120 MB.
    max_image_pixels: int = integer(40_000_000, 10**6, 250 * 10**6, example="40000000",
                                    note="width x height of the largest image the served model decodes")

    # Where the Kubeflow task runs, not how run_fn trains: left out of run_fn's custom_config.
    COMPILE_TIME_ONLY = ("accelerator",)

    def to_custom_config(self) -> dict[str, Any]:
        return {key: value for key, value in dataclasses.asdict(self).items() if key not in self.COMPILE_TIME_ONLY}

    @classmethod
    def from_custom_config(cls, custom_config: Optional[dict[str, Any]]) -> "TrainerConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in (custom_config or {}).items() if k in known}
        return cls(**values)


@dataclasses.dataclass
class EvaluatorConfig:
    # Blessing needs binary accuracy on the test split at least this...
    accuracy_bar: float = setting(0.95, check=number_in(0, 1), example="0.95", tunable=True,
                                  allowed=FRACTION + " (the test split's binary accuracy)")
    # ...and no lower than the served model's (the baseline) minus this tolerance.
    max_accuracy_drop: float = setting(0.0, check=number_in(0, 1), example="0.0", allowed=(
        FRACTION + " (accuracy the candidate may lose against the served model)"))


@dataclasses.dataclass
class InfraValidatorConfig:
    """The candidate runs in TF Serving's loader before the Pusher may push it."""

    # The whole check (loading, the warm-up requests, a canary batch per signature) must end
    # within this; Xception at 150x150 loads and answers in well under a minute on 2 cores.
    timeout_seconds: int = integer(600, 10, 7200, example="600",
                                   note="seconds the model has to load and answer in TF Serving's loader")
    # The canary batch: the first examples of the test split.
    canary_size: int = integer(8, 1, 256, example="8", note="test examples sent to each signature")


# Kubeflow's pipeline-name rule; it holds locally too, so a pipeline that runs also compiles.
PIPELINE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,127}")
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# HOST:PORT of a gRPC service (Beam's job service, a worker pool): no scheme, a port 1-65535.
HOST_PORT_PATTERN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9_.-]*):([0-9]{1,5})")
BEAM_RUNNING_MODES = ("in_memory", "multi_processing")
# How local runs run their Beam steps: "in_process" (Beam's FnApiRunner in the run's process)
# or "portable" (Beam's PortableRunner: each step goes to a job service over Beam's Job API and
# runs on SDK workers that an external worker pool starts, as on Flink, Spark or Dataflow).
BEAM_RUNNERS = ("in_process", "portable")


def is_host_port(address: str) -> bool:
    match = HOST_PORT_PATTERN.fullmatch(address) if isinstance(address, str) else None
    return bool(match) and 0 < int(match.group(2)) < 65536


# beam_runner with its addresses: the portable runner needs both, the in-process one neither.
def _beam_address_usable(value: Any, config: PipelineConfig) -> bool:
    if config.beam_runner == "portable":
        return is_host_port(value)
    return value is None or config.beam_runner not in BEAM_RUNNERS


def _beam_address_allowed(service: str) -> Callable[[PipelineConfig], str]:
    def allowed(config: PipelineConfig) -> str:
        if config.beam_runner == "portable":
            return (f"the HOST:PORT of {service} with beam_runner=portable (`python -m pipeline beam-services` "
                    "starts a local one and prints the settings)")
        return "none unless beam_runner=portable (or --set beam_runner=portable to use it)"

    return allowed


def _beam_address_example(port: int) -> Callable[[PipelineConfig], str]:
    return lambda config: f"127.0.0.1:{port}" if config.beam_runner == "portable" else "none"


@dataclasses.dataclass
class PipelineConfig:
    profile: str
    pipeline_name: str = setting("cats-vs-dogs", check=matches(PIPELINE_NAME_PATTERN), example="cats-vs-dogs",
                                 allowed="lowercase letters, digits and '-', starting with a letter or digit, "
                                 "at most 128 characters (Kubeflow's rule)")
    model_name: str = setting("cats_vs_dogs", check=matches(MODEL_NAME_PATTERN, ".", ".."), example="cats_vs_dogs",
                              allowed="a folder name: letters, digits, '_', '.' and '-', at most 128 characters")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    sample: SampleConfig = dataclasses.field(default_factory=SampleConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    evaluator: EvaluatorConfig = dataclasses.field(default_factory=EvaluatorConfig)
    infra_validator: InfraValidatorConfig = dataclasses.field(default_factory=InfraValidatorConfig)
    # Where TFX writes artifacts and ML Metadata; None: outputs/<pipeline_name> in the checkout.
    # Whether it and serving_dir can be written is checked after the rules (preflight), naming their flags.
    pipeline_root: Optional[str] = setting(None, check=path_or_none, example="outputs/my-root",
                                           allowed="none (outputs/<pipeline_name>) or a folder path")
    # Pusher's base folder: models land in <serving_dir>/<model_name>/<version>/.
    serving_dir: str = setting(os.path.join(REPO_ROOT, "serving_model"), check=path_or_none,
                               allowed="a folder path or URI", example="serving_model")
    # Local runs' Beam DirectRunner mode: "in_memory" (one process; TensorFlow's ops still
    # use every core) or "multi_processing" (worker processes, each paying seconds to start
    # and import TFX). In memory ran the demo 1.4x faster on 2 cores; worker processes pay
    # off on many cores and large data.
    beam_running_mode: str = setting("in_memory", check=one_of(*BEAM_RUNNING_MODES), example="in_memory",
                                     allowed=" or ".join(BEAM_RUNNING_MODES))
    # Worker processes in multi_processing mode; 0 means one per CPU core.
    beam_workers: int = setting(0, check=int_between(0, 256), example="2",
                                allowed="0 (one per CPU core) or a worker count up to 256")
    # "in_process" (the two settings above) or "portable": every Beam step through the job
    # service at beam_job_endpoint, its SDK workers started by the worker pool at
    # beam_worker_pool (both HOST:PORT; `python -m pipeline beam-services` starts a local pair).
    beam_runner: str = setting("in_process", check=one_of(*BEAM_RUNNERS), example="in_process", allowed=(
        " or ".join(BEAM_RUNNERS) + " (Beam's job service and external SDK workers)"))
    beam_job_endpoint: Optional[str] = setting(None, check=_beam_address_usable, example=_beam_address_example(8099),
                                               allowed=_beam_address_allowed("a Beam job service"))
    beam_worker_pool: Optional[str] = setting(None, check=_beam_address_usable, example=_beam_address_example(50000),
                                              allowed=_beam_address_allowed("a Beam worker pool"))

    @property
    def resolved_pipeline_root(self) -> str:
        return os.path.abspath(self.pipeline_root or os.path.join(REPO_ROOT, "outputs", self.pipeline_name))

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.resolved_pipeline_root, "metadata", "metadata.sqlite")

    @property
    def model_serving_dir(self) -> str:
        return os.path.join(os.path.abspath(self.serving_dir), self.model_name)


def sections(config_class: type = PipelineConfig) -> dict[str, type]:
    """The config's sections by name: the fields that hold a section's dataclass."""
    return {field.name: field.default_factory for field in dataclasses.fields(config_class)
            if dataclasses.is_dataclass(field.default_factory)}


def setting_fields(config_class: type = PipelineConfig) -> dict[str, dataclasses.Field]:
    """Every setting's field by its `--set` key (`section.field`, or `field` at the top), in the
    order they are declared."""
    fields, by_name = {}, sections(config_class)
    for field in dataclasses.fields(config_class):
        if field.name in by_name:
            fields.update({f"{field.name}.{sub.name}": sub for sub in dataclasses.fields(by_name[field.name])})
        elif field.name != "profile":
            fields[field.name] = field
    return fields


def declared_rules(config_class: type = PipelineConfig) -> dict[str, Union[SettingRule, str, None]]:
    """Each setting's rule as its field declares it: the rule itself, the module whose table holds
    it, or None (no rule declared)."""
    return {key: field.metadata.get(RULE) for key, field in setting_fields(config_class).items()}


def _runtime_tunables() -> dict[str, dict[str, type]]:
    declared: dict[str, dict[str, type]] = {}
    for name, section in sections().items():
        kinds = typing.get_type_hints(section)
        for field in dataclasses.fields(section):
            if field.metadata.get(TUNABLE):
                declared.setdefault(name, {})[field.name] = kinds[field.name]
    return declared


# The runtime tunables, by config section: the settings a compiled pipeline exposes as runtime
# parameters (a user may change them per run), marked `tunable=True` beside their fields. Each is
# an exec property of the section's component, of the same name and type; the component specs,
# the pipeline's wiring, the rules and the run page all read this (pipeline/config/tunables.py).
RUNTIME_TUNABLES: dict[str, dict[str, type]] = _runtime_tunables()
