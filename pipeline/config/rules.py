"""What each setting may be: one rule per config key, checked before any component runs.

`python -m pipeline run` and `compile-kubeflow` call `check(config)`; a setting that cannot
work stops the command with exit status 2 and a message naming the key, the value, what is
allowed and an example, instead of failing (or silently misbehaving) components later.
Rules whose range depends on another setting (the image size and fine-tuned layer count
depend on the base) read it from the config.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Union

from components.config import MIXED_PRECISION_SETTINGS
from components.example_gen import sources as sources_lib
from components.example_gen import splits as splits_lib
from components.trainer import model as model_lib
from pipeline.config import accelerators, tunables
from pipeline.config.locations import PIPELINE_NAME_PATTERN, is_host_port, is_remote_uri
from pipeline.config.settings import (BEAM_RUNNERS, BEAM_RUNNING_MODES, GENERATED_BASE_WEIGHTS, ConfigError, PipelineConfig,
                                      available_keys, generates_base, generates_sample, sample_archive_unused)

MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MAX_EPOCHS = 1000
MAX_AUGMENTED_VIEWS = 100
MAX_BATCH_SIZE = 4096
MAX_IMAGE_SIZE = 1024
MAX_GPUS = 16
MAX_BEAM_WORKERS = 256
MAX_VALIDATION_SECONDS = 7200
MAX_CANARY_SIZE = 256
MIN_SAMPLE_IMAGES = 20  # per class: each 10% split of the sample then holds a few images of each
MAX_SAMPLE_IMAGES = 12_500  # per class, as in the real archive
DATA_SOURCES = ("tfds", "folder")
NAMED_WEIGHTS = ("imagenet", "none")

Check = Callable[[Any, PipelineConfig], bool]
Text = Union[str, Callable[[PipelineConfig], str]]


@dataclasses.dataclass(frozen=True)
class Rule:
    key: str
    check: Check
    allowed: Text  # what the key may be, as the message says it
    example: Text  # a value that works

    def violation(self, config: PipelineConfig, value: Any = dataclasses.MISSING) -> str | None:
        """Why the key's value (the config's, or `value`) breaks the rule; None when it does not."""
        if value is dataclasses.MISSING:
            value = value_of(config, self.key)
        if _safe(self.check, value, config):
            return None
        return (f"{self.key}={_show(value)}: must be {_text(self.allowed, config)}; "
                f"e.g. --set {self.key}={_text(self.example, config)}")


def check(config: PipelineConfig) -> None:
    """Raises ConfigError listing every setting that breaks its rule (all of them, at once)."""
    problems = [message for rule in RULES if (message := rule.violation(config))]
    problems += [message for cross_check in CROSS_CHECKS if (message := cross_check(config))]
    if problems:
        raise ConfigError("bad settings:\n  " + "\n  ".join(problems))


def check_runtime_parameters(values: dict[str, Any], config: PipelineConfig) -> None:
    """The compiled pipeline's runtime parameters (config/tunables.py) by their
    settings' rules; raises ConfigError naming the parameter as `--param` sets it."""
    rules = {rule.key: rule for rule in RULES}
    problems = []
    for name, value in values.items():
        tunable = tunables.BY_NAME.get(name)
        rule = rules.get(tunable.key) if tunable else None
        message = rule.violation(config, value) if rule else None
        if message:
            problems.append(message.replace(f"--set {rule.key}=", f"--param {name}=").replace(rule.key, name, 1))
    if problems:
        raise ConfigError("bad parameters:\n  " + "\n  ".join(problems))


def value_of(config: PipelineConfig, key: str) -> Any:
    target: Any = config
    for part in key.split("."):
        target = getattr(target, part)
    return target


def _safe(check_fn: Check, value: Any, config: PipelineConfig) -> bool:
    try:
        return bool(check_fn(value, config))
    except (TypeError, ValueError):
        return False


def _text(text: Text, config: PipelineConfig) -> str:
    return text(config) if callable(text) else text


def _show(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def int_between(low: int, high: int) -> Check:
    return lambda value, _: _is_int(value) and low <= value <= high


def number_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    def check_number(value: Any, _: PipelineConfig) -> bool:
        if not _is_number(value):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return check_number


def is_bool(value: Any, _: PipelineConfig) -> bool:
    return isinstance(value, bool)


def one_of(*choices: str) -> Check:
    return lambda value, _: value in choices


def _not_an_existing_file(value: Any, _: PipelineConfig) -> bool:
    return value is None or (isinstance(value, str) and not os.path.isfile(value))


def _path_or_none(value: Any, _: PipelineConfig) -> bool:
    return value is None or (isinstance(value, str) and bool(value.strip()))


def _known_base(value: Any, _: PipelineConfig) -> bool:
    return value in model_lib.BASES


def _base_example(config: PipelineConfig) -> str:
    """The recipe's base, or one that accepts the configured image size."""
    size = config.trainer.image_size
    fits = [name for name, spec in model_lib.BASES.items() if _is_int(size) and spec.min_image_size <= size]
    return "xception" if "xception" in fits or not fits else fits[0]


def _base(config: PipelineConfig) -> model_lib.BaseSpec | None:
    return model_lib.BASES.get(config.trainer.base)


def _image_size_fits_base(value: Any, config: PipelineConfig) -> bool:
    base = _base(config)
    low = base.min_image_size if base else 1
    return _is_int(value) and low <= value <= MAX_IMAGE_SIZE


def _image_size_allowed(config: PipelineConfig) -> str:
    base = _base(config)
    if base is None:
        return f"an integer up to {MAX_IMAGE_SIZE} (and at least the base's minimum input size)"
    return (f"an integer from {base.min_image_size} to {MAX_IMAGE_SIZE} "
            f"(keras.applications accepts no smaller input for base {config.trainer.base})")


def _fine_tune_layers_fit_base(value: Any, config: PipelineConfig) -> bool:
    base = _base(config)
    return _is_int(value) and 0 <= value <= (base.layer_count if base else value)


def _fine_tune_layers_allowed(config: PipelineConfig) -> str:
    base = _base(config)
    most = f"{base.layer_count}, the layer count of base {config.trainer.base}" if base else "the base's layer count"
    return f"0 (unfreeze the whole base in phase 2) or a number of top layers up to {most}"


def _weights_usable(value: Any, config: PipelineConfig) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if value.lower() in NAMED_WEIGHTS or is_remote_uri(value):
        return True
    # A local path is read, never written: it must exist, in every profile. The demo's own
    # base, at a path of its own, is pre-trained there on first use (sample.pretrain_base).
    return os.path.isfile(value) or generates_base(config)


def _weights_allowed(config: PipelineConfig) -> str:
    weights = config.trainer.weights
    allowed = ("imagenet (Keras downloads them), none (random weights), a URI such as gs://BUCKET/base.weights.h5, "
               "or a local weights file that exists")
    if not isinstance(weights, str) or not weights:
        return allowed
    if config.sample.pretrain_base:
        return (f"{allowed} (no file at {os.path.abspath(weights)}; the demo pre-trains its base only at "
                f"{GENERATED_BASE_WEIGHTS})")
    return f"{allowed} (no file at {os.path.abspath(weights)})"


def _split_parses(value: Any, _: PipelineConfig) -> bool:
    """TFDS's own split parser, against a nominal size (the real one is known only once prepared)."""
    if not isinstance(value, str) or not value.strip():
        return False
    splits_lib.check_expressions({"split": value})
    return True


# data.source, data.archive and data.folder together: each source reads only its own input.
def _archive_usable(value: Any, config: PipelineConfig) -> bool:
    if config.data.source not in DATA_SOURCES or value is None:
        return True  # a bad source is data.source's rule's to report
    if config.data.source == "folder":
        return sample_archive_unused(config)  # the demo's own sample, dropped before the run
    # ExampleGen reads the archive from this machine's disk; the demo's sample is made on first use.
    return isinstance(value, str) and (generates_sample(config) or _archive_problem(value) is None)


def _archive_problem(path: str) -> str | None:
    """What ExampleGen would refuse in the archive (not a zip, no PetImages/ folder), or None."""
    if not os.path.isfile(path):
        return f"no file at {os.path.abspath(path)}"
    try:
        sources_lib.check_archive(path)
    except ValueError as error:
        return str(error)
    return None


def _archive_allowed(config: PipelineConfig) -> str:
    archive = config.data.archive
    if config.data.source == "folder":
        return ("none with data.source=folder (only the tfds source reads an archive; drop --archive, "
                "or --set data.source=tfds to read the archive)")
    allowed = ("none (TFDS downloads it) or the path of an existing kagglecatsanddogs_5340.zip on this machine "
               "(run --archive ZIP)")
    if isinstance(archive, str) and is_remote_uri(archive):
        return f"{allowed}; ExampleGen reads the archive from local disk, not from {archive.split('://')[0]}://"
    return f"{allowed}; {_archive_problem(archive)}" if isinstance(archive, str) and archive else allowed


def _folder_usable(value: Any, config: PipelineConfig) -> bool:
    if config.data.source not in DATA_SOURCES:
        return True
    if config.data.source == "tfds":
        return value is None
    try:
        sources_lib.list_class_folders(value)  # raises ValueError unless two non-empty class folders
    except OSError:
        return False
    return True


def _folder_allowed(config: PipelineConfig) -> str:
    if config.data.source == "tfds":
        return ("none with data.source=tfds (only the folder source reads a folder; "
                "or --set data.source=folder to read it)")
    allowed = "an existing folder with two class sub-folders when data.source=folder"
    folder = config.data.folder
    if not isinstance(folder, str) or not folder:
        return allowed
    if not os.path.isdir(folder):
        return f"{allowed} (no folder at {os.path.abspath(folder)})"
    try:
        sources_lib.list_class_folders(folder)
    except (OSError, ValueError) as error:
        return f"{allowed} ({error})"
    return allowed


def _folder_example(config: PipelineConfig) -> str:
    return "none" if config.data.source == "tfds" else "/data/pets"


def _accelerator_known(value: Any, _: PipelineConfig) -> bool:
    return accelerators.is_known(value)


def _accelerator_allowed(config: PipelineConfig) -> str:
    value = config.trainer.accelerator
    allowed = (f"{accelerators.KUBERNETES_GPU} (open-source Kubeflow Pipelines: the Kubernetes resource NVIDIA's "
               "device plugin exposes, or another nvidia.com/ resource such as a MIG slice) or a Vertex AI GPU: "
               + ", ".join(accelerators.vertex_gpu_names()))
    reason = accelerators.UNUSABLE_VERTEX_GPUS.get(value) if isinstance(value, str) else None
    return f"{allowed} ({value}: {reason})" if reason else allowed


def _accelerator_without_gpus(config: PipelineConfig) -> str | None:
    """trainer.accelerator names the type of the Trainer's GPU request, which gpus=0 leaves out
    (an unknown name is its rule's to report)."""
    accelerator = config.trainer.accelerator
    if config.trainer.gpus == 0 and accelerator != type(config.trainer)().accelerator and accelerators.is_known(accelerator):
        return (f"trainer.accelerator={config.trainer.accelerator}: applies only with trainer.gpus above 0 "
                f"(the accelerators the Trainer task asks for); e.g. --set trainer.gpus=1")
    return None


def _pipeline_name(value: Any, _: PipelineConfig) -> bool:
    return isinstance(value, str) and PIPELINE_NAME_PATTERN.fullmatch(value) is not None


def _model_name(value: Any, _: PipelineConfig) -> bool:
    return isinstance(value, str) and MODEL_NAME_PATTERN.fullmatch(value) is not None and value not in (".", "..")


def _splits_disjoint(config: PipelineConfig) -> str | None:
    """The three split expressions, each valid alone, must not select the same examples."""
    try:
        splits_lib.check_expressions(config.data.split_expressions())
    except (ValueError, TypeError) as error:
        if all(_safe(_split_parses, expression, config) for expression in config.data.split_expressions().values()):
            return f"data.train_split, data.eval_split, data.test_split: {error}"
    return None


# beam_runner with its addresses: the portable runner needs both, the in-process one neither,
# and the in-process runner's own settings mean nothing to the portable one.
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


def _in_process_settings_with_portable(config: PipelineConfig) -> str | None:
    """beam_running_mode and beam_workers tune Beam's in-process runner only."""
    if config.beam_runner != "portable":
        return None
    for key, default in (("beam_running_mode", "in_memory"), ("beam_workers", 0)):
        if value_of(config, key) != default:
            return (f"{key}={_show(value_of(config, key))}: applies to beam_runner=in_process only (the portable "
                    f"runner runs each step on the worker pool's workers); e.g. --set {key}={default}")
    return None


EPOCHS = f"an integer from 0 to {MAX_EPOCHS}"
LEARNING_RATE = "a number above 0 and at most 1"
FRACTION = "a number from 0 to 1"
SPLIT = ("a TFDS split expression over the 'train' split, e.g. train[:40%] or train[100:200] "
         f"(see {splits_lib.SPLITS_HELP})")

RULES: tuple[Rule, ...] = (
    Rule("pipeline_name", _pipeline_name, "lowercase letters, digits and '-', starting with a letter or digit, "
         "at most 128 characters (Kubeflow's rule)", "cats-vs-dogs"),
    Rule("model_name", _model_name, "a folder name: letters, digits, '_', '.' and '-', at most 128 characters",
         "cats_vs_dogs"),
    Rule("data.source", one_of(*DATA_SOURCES), " or ".join(DATA_SOURCES), "tfds"),
    Rule("data.archive", _archive_usable, _archive_allowed, "none"),
    Rule("data.folder", _folder_usable, _folder_allowed, _folder_example),
    Rule("data.tfds_data_dir", _not_an_existing_file, "none (TFDS's default) or a folder or URI, not a file",
         "none"),
    Rule("data.train_split", _split_parses, SPLIT, "train[:40%]"),
    Rule("data.eval_split", _split_parses, SPLIT, "train[40%:50%]"),
    Rule("data.test_split", _split_parses, SPLIT, "train[50%:60%]"),
    Rule("data.validate_checksum", is_bool, "true or false", "true"),
    Rule("data.gzip_output", is_bool, "true or false", "false"),
    Rule("sample.enabled", is_bool, "true or false", "true"),
    Rule("sample.images_per_class", int_between(MIN_SAMPLE_IMAGES, MAX_SAMPLE_IMAGES),
         f"an integer from {MIN_SAMPLE_IMAGES} to {MAX_SAMPLE_IMAGES}", "450"),
    Rule("sample.pretrain_base", is_bool, "true or false", "true"),
    Rule("trainer.base", _known_base, f"one of {', '.join(model_lib.BASES)}", _base_example),
    Rule("trainer.weights", _weights_usable, _weights_allowed, "imagenet"),
    Rule("trainer.image_size", _image_size_fits_base, _image_size_allowed, "150"),
    Rule("trainer.batch_size", int_between(1, MAX_BATCH_SIZE), f"an integer from 1 to {MAX_BATCH_SIZE}", "32"),
    Rule("trainer.phase1_epochs", int_between(0, MAX_EPOCHS), EPOCHS, "20"),
    Rule("trainer.phase1_learning_rate", number_in(0, 1, low_open=True), LEARNING_RATE, "1e-3"),
    Rule("trainer.phase1_feature_cache", is_bool, "true or false", "true"),
    Rule("trainer.phase1_augmented_views", int_between(1, MAX_AUGMENTED_VIEWS),
         f"an integer from 1 to {MAX_AUGMENTED_VIEWS} (augmentation draws of each training image)", "4"),
    Rule("trainer.phase2_epochs", int_between(0, MAX_EPOCHS), EPOCHS, "10"),
    Rule("trainer.phase2_learning_rate", number_in(0, 1, low_open=True), LEARNING_RATE, "1e-5"),
    Rule("trainer.fine_tune_top_layers", _fine_tune_layers_fit_base, _fine_tune_layers_allowed, "0"),
    Rule("trainer.dropout", number_in(0, 1, high_open=True), "a number from 0 up to (not including) 1", "0.2"),
    Rule("trainer.mixed_precision", one_of(*MIXED_PRECISION_SETTINGS), "auto (on GPUs of compute capability "
         "7.0 or newer), true (on any GPU) or false", "auto"),
    Rule("trainer.gpus", int_between(0, MAX_GPUS), f"an integer from 0 to {MAX_GPUS}", "1"),
    Rule("trainer.accelerator", _accelerator_known, _accelerator_allowed, accelerators.KUBERNETES_GPU),
    Rule("trainer.seed", int_between(0, 2**31 - 1), "an integer from 0 to 2147483647", "1337"),
    Rule("trainer.max_image_pixels", int_between(10**6, 250 * 10**6), "an integer from 1000000 to 250000000 "
         "(width x height of the largest image the served model decodes)", "40000000"),
    Rule("evaluator.accuracy_bar", number_in(0, 1), FRACTION + " (the test split's binary accuracy)", "0.95"),
    Rule("evaluator.max_accuracy_drop", number_in(0, 1), FRACTION + " (accuracy the candidate may lose "
         "against the served model)", "0.0"),
    Rule("infra_validator.timeout_seconds", int_between(10, MAX_VALIDATION_SECONDS),
         f"an integer from 10 to {MAX_VALIDATION_SECONDS} (seconds the model has to load and answer in TF "
         "Serving's loader)", "600"),
    Rule("infra_validator.canary_size", int_between(1, MAX_CANARY_SIZE),
         f"an integer from 1 to {MAX_CANARY_SIZE} (test examples sent to each signature)", "8"),
    # Whether these folders can be written is checked next (preflight), naming their flags.
    Rule("pipeline_root", _path_or_none, "none (outputs/<pipeline_name>) or a folder path", "outputs/my-root"),
    Rule("serving_dir", _path_or_none, "a folder path or URI", "serving_model"),
    Rule("beam_running_mode", one_of(*BEAM_RUNNING_MODES), " or ".join(BEAM_RUNNING_MODES), "in_memory"),
    Rule("beam_workers", int_between(0, MAX_BEAM_WORKERS),
         f"0 (one per CPU core) or a worker count up to {MAX_BEAM_WORKERS}", "2"),
    Rule("beam_runner", one_of(*BEAM_RUNNERS), " or ".join(BEAM_RUNNERS) + " (Beam's job service and "
         "external SDK workers)", "in_process"),
    Rule("beam_job_endpoint", _beam_address_usable, _beam_address_allowed("a Beam job service"),
         _beam_address_example(8099)),
    Rule("beam_worker_pool", _beam_address_usable, _beam_address_allowed("a Beam worker pool"),
         _beam_address_example(50000)),
)
CROSS_CHECKS = (_splits_disjoint, _in_process_settings_with_portable, _accelerator_without_gpus)


def rule_keys() -> list[str]:
    return [rule.key for rule in RULES]


def unruled_keys(config: PipelineConfig) -> list[str]:
    """Config keys without a rule: none, or the table has fallen behind the config."""
    return sorted(set(available_keys(config)) - set(rule_keys()))
