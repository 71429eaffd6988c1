"""What each setting may be: one rule per config key, checked before any component runs.

`python -m pipeline run` and `compile-kubeflow` call `check(config)`; a setting that cannot
work stops the command with exit status 2 and a message naming the key, the value, what is
allowed and an example, instead of failing (or silently misbehaving) components later.

Most rules are beside their fields, in components/config.py. The table here holds those that
need a step's code or the pipeline's, which that shared module cannot import (the bases, the
split parser, the sources' readers, the accelerator names, the demo's input paths); their
fields name this module. RULES is both, in the settings' order. Rules whose range depends on
another setting (the image size and fine-tuned layer count depend on the base) read it from
the config.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from components import config as config_lib
from components.config import DATA_SOURCES, PipelineConfig
from components.example_gen import sources as sources_lib
from components.example_gen import splits as splits_lib
from components.field_rules import Check, SettingRule, Text, is_int
from components.trainer import model as model_lib
from pipeline.config import accelerators, tunables
from pipeline.config.locations import is_remote_uri
from pipeline.config.settings import (GENERATED_BASE_WEIGHTS, ConfigError, available_keys, generates_base,
                                      generates_sample, sample_archive_unused)

MAX_IMAGE_SIZE = 1024
NAMED_WEIGHTS = ("imagenet", "none")


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

    @classmethod
    def beside(cls, key: str, rule: SettingRule) -> Rule:
        """The rule a field declares (components/config.py), for its key."""
        return cls(key, rule.check, rule.allowed, rule.example)


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


def _known_base(value: Any, _: PipelineConfig) -> bool:
    return value in model_lib.BASES


def _base_example(config: PipelineConfig) -> str:
    """The recipe's base, or one that accepts the configured image size."""
    size = config.trainer.image_size
    fits = [name for name, spec in model_lib.BASES.items() if is_int(size) and spec.min_image_size <= size]
    return "xception" if "xception" in fits or not fits else fits[0]


def _base(config: PipelineConfig) -> model_lib.BaseSpec | None:
    return model_lib.BASES.get(config.trainer.base)


def _image_size_fits_base(value: Any, config: PipelineConfig) -> bool:
    base = _base(config)
    low = base.min_image_size if base else 1
    return is_int(value) and low <= value <= MAX_IMAGE_SIZE


def _image_size_allowed(config: PipelineConfig) -> str:
    base = _base(config)
    if base is None:
        return f"an integer up to {MAX_IMAGE_SIZE} (and at least the base's minimum input size)"
    return (f"an integer from {base.min_image_size} to {MAX_IMAGE_SIZE} "
            f"(keras.applications accepts no smaller input for base {config.trainer.base})")


def _fine_tune_layers_fit_base(value: Any, config: PipelineConfig) -> bool:
    base = _base(config)
    return is_int(value) and 0 <= value <= (base.layer_count if base else value)


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


def _splits_disjoint(config: PipelineConfig) -> str | None:
    """The three split expressions, each valid alone, must not select the same examples."""
    try:
        splits_lib.check_expressions(config.data.split_expressions())
    except (ValueError, TypeError) as error:
        if all(_safe(_split_parses, expression, config) for expression in config.data.split_expressions().values()):
            return f"data.train_split, data.eval_split, data.test_split: {error}"
    return None


def _in_process_settings_with_portable(config: PipelineConfig) -> str | None:
    """beam_running_mode and beam_workers tune Beam's in-process runner only."""
    if config.beam_runner != "portable":
        return None
    for key, default in (("beam_running_mode", "in_memory"), ("beam_workers", 0)):
        if value_of(config, key) != default:
            return (f"{key}={_show(value_of(config, key))}: applies to beam_runner=in_process only (the portable "
                    f"runner runs each step on the worker pool's workers); e.g. --set {key}={default}")
    return None


SPLIT = ("a TFDS split expression over the 'train' split, e.g. train[:40%] or train[100:200] "
         f"(see {splits_lib.SPLITS_HELP})")

# The rules that need a step's code or the pipeline's; every other rule is beside its field.
RULES_NEEDING_CODE: tuple[Rule, ...] = (
    Rule("data.archive", _archive_usable, _archive_allowed, "none"),
    Rule("data.folder", _folder_usable, _folder_allowed, _folder_example),
    Rule("data.train_split", _split_parses, SPLIT, "train[:40%]"),
    Rule("data.eval_split", _split_parses, SPLIT, "train[40%:50%]"),
    Rule("data.test_split", _split_parses, SPLIT, "train[50%:60%]"),
    Rule("trainer.base", _known_base, f"one of {', '.join(model_lib.BASES)}", _base_example),
    Rule("trainer.weights", _weights_usable, _weights_allowed, "imagenet"),
    Rule("trainer.image_size", _image_size_fits_base, _image_size_allowed, "150"),
    Rule("trainer.fine_tune_top_layers", _fine_tune_layers_fit_base, _fine_tune_layers_allowed, "0"),
    Rule("trainer.accelerator", _accelerator_known, _accelerator_allowed, accelerators.KUBERNETES_GPU),
)
CROSS_CHECKS = (_splits_disjoint, _in_process_settings_with_portable, _accelerator_without_gpus)


def rules_of(config_class: type = PipelineConfig, table: tuple[Rule, ...] = RULES_NEEDING_CODE) -> tuple[Rule, ...]:
    """Every setting's rules in the settings' order: the one beside its field, and those of the
    table that name its key (one of the two: misplaced_rules says where not)."""
    rules = []
    for key, declared in config_lib.declared_rules(config_class).items():
        if isinstance(declared, SettingRule):
            rules.append(Rule.beside(key, declared))
        rules.extend(rule for rule in table if rule.key == key)
    return tuple(rules)


RULES = rules_of()


def misplaced_rules(config_class: type = PipelineConfig, table: tuple[Rule, ...] = RULES_NEEDING_CODE) -> list[str]:
    """Where a setting's rule is not where its field says: none, or a rule is in two places,
    in none, or in the table for no setting."""
    problems = []
    declared = config_lib.declared_rules(config_class)
    for key, rule in declared.items():
        in_table = [entry.key for entry in table].count(key)
        if isinstance(rule, SettingRule):
            if in_table:
                problems.append(f"{key}: a rule beside its field and {in_table} in {__name__}'s table")
        elif rule is None:
            problems.append(f"{key}: its field declares no rule (check, allowed and example, or rule={__name__!r})")
        elif rule != __name__:
            problems.append(f"{key}: its field names {rule!r} for its rule, not {__name__}")
        elif in_table != 1:
            problems.append(f"{key}: its field names {__name__} for its rule; that table has {in_table}")
    problems += [f"{entry.key}: in {__name__}'s table, but no setting has that key"
                 for entry in table if entry.key not in declared]
    return problems


def rule_keys() -> list[str]:
    return [rule.key for rule in RULES]


def unruled_keys(config: PipelineConfig) -> list[str]:
    """Config keys without a rule: none, or a field has lost its rule."""
    return sorted(set(available_keys(config)) - set(rule_keys()))
