"""The settings' rules: every setting has one rule, beside its field (components/config.py) or
in the table of pipeline/config/rules.py, and each rule refuses what cannot work."""

import dataclasses

import pytest

from components.config import PipelineConfig, TrainerConfig
from components.field_rules import IN_PIPELINE_RULES, setting
from pipeline.config import rules as config_rules
from pipeline.config import settings
from pipeline.config.settings import ConfigError, apply_overrides, load_profile


def demo(*assignments):
    return apply_overrides(load_profile("demo"), list(assignments))


def test_every_config_key_has_a_rule():
    for profile in ("demo", "full"):
        assert config_rules.unruled_keys(load_profile(profile)) == []
    assert len(set(config_rules.rule_keys())) == len(config_rules.RULES)


def test_every_rule_is_beside_its_field_or_in_the_rules_table_never_both_never_none():
    assert config_rules.misplaced_rules() == []
    keys = settings.available_keys(load_profile("full"))
    assert config_rules.rule_keys() == keys  # one each, in the settings' order
    in_table = [rule.key for rule in config_rules.RULES_NEEDING_CODE]
    assert 0 < len(in_table) < len(keys) - len(in_table)  # most rules are beside their fields


def always(value, config):
    return True


@dataclasses.dataclass
class TrainerWithARuleTwice(TrainerConfig):
    """trainer.base with a rule beside its field, while the table has one too."""

    base: str = setting("xception", check=always, allowed="any base", example="xception")


@dataclasses.dataclass
class TrainerWithRulelessFields(TrainerConfig):
    momentum: float = 0.9  # a plain field: no rule at all
    nesterov: bool = setting(False, rule="pipeline.config.elsewhere")  # points to no table of rules


@dataclasses.dataclass
class ConfigWithARuleTwice(PipelineConfig):
    trainer: TrainerWithARuleTwice = dataclasses.field(default_factory=TrainerWithARuleTwice)


@dataclasses.dataclass
class ConfigWithRulelessFields(PipelineConfig):
    trainer: TrainerWithRulelessFields = dataclasses.field(default_factory=TrainerWithRulelessFields)


def test_a_rule_beside_its_field_and_in_the_table_is_found():
    assert config_rules.misplaced_rules(ConfigWithARuleTwice) == [
        "trainer.base: a rule beside its field and 1 in pipeline.config.rules's table"]
    assert [rule.key for rule in config_rules.rules_of(ConfigWithARuleTwice)].count("trainer.base") == 2
    table = (*config_rules.RULES_NEEDING_CODE, config_rules.Rule("trainer.batch_size", always, "any", "1"))
    assert config_rules.misplaced_rules(PipelineConfig, table) == [
        "trainer.batch_size: a rule beside its field and 1 in pipeline.config.rules's table"]


def test_a_setting_without_a_rule_is_found():
    assert config_rules.misplaced_rules(ConfigWithRulelessFields) == [
        "trainer.momentum: its field declares no rule (check, allowed and example, or rule='pipeline.config.rules')",
        "trainer.nesterov: its field names 'pipeline.config.elsewhere' for its rule, not pipeline.config.rules",
    ]
    assert config_rules.unruled_keys(ConfigWithRulelessFields(profile="demo")) == ["trainer.momentum", "trainer.nesterov"]


def test_a_field_that_names_the_rules_table_needs_its_rule_there_and_the_table_names_only_settings(monkeypatch):
    without_base = tuple(rule for rule in config_rules.RULES_NEEDING_CODE if rule.key != "trainer.base")
    assert config_rules.misplaced_rules(PipelineConfig, without_base) == [
        "trainer.base: its field names pipeline.config.rules for its rule; that table has 0"]
    monkeypatch.setattr(config_rules, "RULES", config_rules.rules_of(PipelineConfig, without_base))
    assert config_rules.unruled_keys(load_profile("full")) == ["trainer.base"]
    stray = (*config_rules.RULES_NEEDING_CODE, config_rules.Rule("trainer.momentum", always, "any", "0.9"))
    assert config_rules.misplaced_rules(PipelineConfig, stray) == [
        "trainer.momentum: in pipeline.config.rules's table, but no setting has that key"]


def test_a_setting_is_declared_with_its_rule_or_with_where_its_rule_is_not_both():
    with pytest.raises(TypeError, match="not both"):
        setting(1, check=always, allowed="any", example="1", rule=IN_PIPELINE_RULES)
    with pytest.raises(TypeError, match="needs check, allowed and example"):
        setting(1, check=always, allowed="any")
    with pytest.raises(TypeError, match="needs check, allowed and example"):
        setting(1)


@pytest.mark.parametrize("profile", ["demo", "full"])
def test_the_profiles_break_no_rule(profile):
    config_rules.check(load_profile(profile))


# (assignment, what the message must say is allowed)
BAD_SETTINGS = [
    ("pipeline_name=Cats_Dogs", "lowercase letters, digits and '-'"),
    ("model_name=../escape", "a folder name"),
    ("data.source=s3", "tfds or folder"),
    ("data.folder=/nowhere", "none with data.source=tfds"),
    ("data.train_split=training[:40%]", "a TFDS split expression over the 'train' split"),
    ("data.eval_split=train[40%:", "a TFDS split expression"),
    ("data.test_split=", "a TFDS split expression"),
    ("sample.images_per_class=3", "an integer from 20 to 12500"),
    ("trainer.base=resnet50", "one of xception, mobilenet_v3_small, mobilenet_v3_large, efficientnet_b0"),
    ("trainer.image_size=0", "an integer from 32 to 1024"),
    ("trainer.image_size=31", "keras.applications accepts no smaller input for base mobilenet_v3_small"),
    ("trainer.image_size=2048", "an integer from 32 to 1024"),
    ("trainer.batch_size=0", "an integer from 1 to 4096"),
    ("trainer.phase1_epochs=-1", "an integer from 0 to 1000"),
    ("trainer.phase2_epochs=100000", "an integer from 0 to 1000"),
    ("trainer.phase1_augmented_views=0", "an integer from 1 to 100"),
    ("trainer.phase1_learning_rate=0", "a number above 0 and at most 1"),
    ("trainer.phase2_learning_rate=-0.001", "a number above 0 and at most 1"),
    ("trainer.phase2_learning_rate=nan", "a number above 0 and at most 1"),
    ("trainer.fine_tune_top_layers=-1", "up to 157, the layer count of base mobilenet_v3_small"),
    ("trainer.fine_tune_top_layers=158", "up to 157, the layer count of base mobilenet_v3_small"),
    ("trainer.dropout=1", "a number from 0 up to (not including) 1"),
    ("trainer.dropout=-0.1", "a number from 0 up to (not including) 1"),
    ("trainer.gpus=-1", "an integer from 0 to 16"),
    ("trainer.accelerator=TPU_V3", "nvidia.com/gpu (open-source Kubeflow Pipelines: the Kubernetes resource"),
    ("trainer.accelerator=amd.com/gpu", "or a Vertex AI GPU: NVIDIA_TESLA_P100, "),
    ("trainer.mixed_precision=maybe", "auto (on GPUs of compute capability 7.0 or newer), true (on any GPU) or false"),
    ("trainer.seed=-5", "an integer from 0 to 2147483647"),
    ("evaluator.accuracy_bar=1.5", "a number from 0 to 1"),
    ("evaluator.max_accuracy_drop=-0.1", "a number from 0 to 1"),
    ("beam_running_mode=threads", "in_memory or multi_processing"),
    ("beam_workers=-1", "0 (one per CPU core) or a worker count up to 256"),
    ("beam_runner=dask", "in_process or portable"),
    ("beam_job_endpoint=localhost:8099", "none unless beam_runner=portable"),
    ("beam_worker_pool=localhost:50000", "none unless beam_runner=portable"),
    ("serving_dir= ", "a folder path or URI"),
]


@pytest.mark.parametrize("assignment, allowed", [case for case in BAD_SETTINGS if case[1]])
def test_a_bad_setting_is_named_with_its_value_what_is_allowed_and_an_example(assignment, allowed):
    key, _, value = assignment.partition("=")
    with pytest.raises(ConfigError) as raised:
        config_rules.check(demo(assignment))
    message = str(raised.value)
    assert f"{key}={value.strip() or ''}" in message
    assert f"must be {allowed}" in message or allowed in message
    assert f"e.g. --set {key}=" in message
    example = message.split(f"e.g. --set {key}=")[1].split()[0]
    config_rules.check(demo(f"{key}={example}") if key != "trainer.image_size" else demo(f"{key}=64"))


def test_every_bad_setting_is_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        config_rules.check(demo("trainer.phase1_epochs=-1", "evaluator.accuracy_bar=1.5", "trainer.batch_size=0"))
    assert str(raised.value).count("\n  ") == 3


@pytest.mark.parametrize("base, smallest, layers", [
    ("xception", 71, 132), ("mobilenet_v3_small", 32, 157), ("efficientnet_b0", 32, 237),
])
def test_image_size_and_fine_tuned_layers_follow_the_base(base, smallest, layers):
    config_rules.check(demo(f"trainer.base={base}", f"trainer.image_size={smallest}",
                            f"trainer.fine_tune_top_layers={layers}"))
    with pytest.raises(ConfigError, match=f"an integer from {smallest} to 1024"):
        config_rules.check(demo(f"trainer.base={base}", f"trainer.image_size={smallest - 1}"))
    with pytest.raises(ConfigError, match=f"up to {layers}, the layer count of base {base}"):
        config_rules.check(demo(f"trainer.base={base}", "trainer.image_size=150",
                                f"trainer.fine_tune_top_layers={layers + 1}"))


def one_line(config):
    """The usage error's one line: `key=value: must be ...; e.g. --set key=...`."""
    with pytest.raises(ConfigError) as raised:
        config_rules.check(config)
    [line] = str(raised.value).splitlines()[1:]
    return line.strip()


@pytest.mark.parametrize("profile", ["demo", "full"])
def test_a_local_weights_path_that_does_not_exist_is_refused_in_every_profile(profile, tmp_path):
    """Issue 25: the demo pre-trained its base into whatever trainer.weights named."""
    missing = str(tmp_path / "no" / "such" / "weights.h5")
    config = apply_overrides(load_profile(profile), [f"trainer.weights={missing}"])
    line = one_line(config)
    assert line.startswith(f"trainer.weights={missing}: must be imagenet")
    assert f"a local weights file that exists (no file at {missing}" in line
    assert line.endswith("e.g. --set trainer.weights=imagenet")
    (tmp_path / "base.weights.h5").write_bytes(b"h5")
    config_rules.check(apply_overrides(load_profile(profile), [f"trainer.weights={tmp_path / 'base.weights.h5'}"]))
    for weights in ("imagenet", "none", "gs://bucket/base.weights.h5"):
        config_rules.check(apply_overrides(load_profile(profile), [f"trainer.weights={weights}"]))


def test_the_demo_makes_its_base_only_at_its_own_path(tmp_path, monkeypatch):
    generated = tmp_path / "generated" / "mobilenet_v3_small_64.weights.h5"  # not made yet
    monkeypatch.setattr(settings, "GENERATED_BASE_WEIGHTS", str(generated))
    config_rules.check(demo(f"trainer.weights={generated}"))  # pre-trained there on first use
    assert settings.generates_base(demo(f"trainer.weights={generated}"))
    assert "no file at" in one_line(demo(f"trainer.weights={generated}", "sample.pretrain_base=false"))
    assert not settings.generates_base(demo(f"trainer.weights={tmp_path / 'mine.weights.h5'}"))
    assert not settings.generates_base(demo("trainer.weights=imagenet"))


def test_a_local_archive_that_does_not_exist_is_refused_and_the_sample_is_made_only_at_its_own_path(tmp_path):
    missing = str(tmp_path / "kagglecatsanddogs_5340.zip")
    for profile in ("demo", "full"):
        line = one_line(apply_overrides(load_profile(profile), [f"data.archive={missing}"]))
        assert line == (f"data.archive={missing}: must be none (TFDS downloads it) or the path of an existing "
                        f"kagglecatsanddogs_5340.zip on this machine (run --archive ZIP); no file at {missing}; "
                        "e.g. --set data.archive=none")
    assert "reads the archive from local disk" in one_line(demo("data.archive=gs://bucket/pets.zip"))
    config_rules.check(demo())  # the demo's own sample: generated on first use
    assert settings.generates_sample(demo()) and not settings.generates_sample(demo("data.archive=none"))
    config_rules.check(demo("data.archive=none"))  # TFDS downloads the archive


def test_a_folder_source_needs_a_folder_with_two_class_folders(tmp_path):
    assert one_line(demo("data.source=folder")) == (
        "data.folder=none: must be an existing folder with two class sub-folders when data.source=folder; "
        "e.g. --set data.folder=/data/pets")
    assert one_line(demo("data.source=folder", "data.folder=/nowhere")).startswith(
        "data.folder=/nowhere: must be an existing folder with two class sub-folders when data.source=folder "
        "(no folder at /nowhere)")
    (tmp_path / "Cat").mkdir()
    assert "has 1 class sub-folders ['Cat']" in one_line(demo("data.source=folder", f"data.folder={tmp_path}"))
    (tmp_path / "Dog").mkdir()
    (tmp_path / "Cat" / "1.jpg").write_bytes(b"jpeg")
    assert "is empty" in one_line(demo("data.source=folder", f"data.folder={tmp_path}"))
    (tmp_path / "Dog" / "1.jpg").write_bytes(b"jpeg")
    config_rules.check(demo("data.source=folder", f"data.folder={tmp_path}"))
    config_rules.check(apply_overrides(load_profile("full"), ["data.source=folder", f"data.folder={tmp_path}"]))


@pytest.fixture
def pets(tmp_path):
    for name in ("Cat", "Dog"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        (tmp_path / "pets" / name / "1.jpg").write_bytes(b"jpeg")
    return tmp_path / "pets"


def test_the_folder_source_with_the_demo_needs_no_archive(pets):
    """Issue 25: the demo's sample archive made ExampleGen raise with the folder source, and
    data.archive=none made the sample generator raise."""
    for extra in ([], ["data.archive=none"]):
        config = demo("data.source=folder", f"data.folder={pets}", *extra)
        config_rules.check(config)
        assert not settings.generates_sample(config)
    assert settings.sample_archive_unused(demo("data.source=folder", f"data.folder={pets}"))


@pytest.mark.parametrize("profile, assignments, line", [
    ("full", ["data.source=folder", "data.folder={pets}", "data.archive={zip}"],
     "data.archive={zip}: must be none with data.source=folder (only the tfds source reads an archive; drop "
     "--archive, or --set data.source=tfds to read the archive); e.g. --set data.archive=none"),
    ("demo", ["data.source=folder", "data.folder={pets}", "data.archive={zip}"],
     "data.archive={zip}: must be none with data.source=folder (only the tfds source reads an archive; drop "
     "--archive, or --set data.source=tfds to read the archive); e.g. --set data.archive=none"),
    ("demo", ["data.folder={pets}"],
     "data.folder={pets}: must be none with data.source=tfds (only the folder source reads a folder; or "
     "--set data.source=folder to read it); e.g. --set data.folder=none"),
    ("full", ["data.folder={pets}"],
     "data.folder={pets}: must be none with data.source=tfds (only the folder source reads a folder; or "
     "--set data.source=folder to read it); e.g. --set data.folder=none"),
], ids=["full-folder-with-archive", "demo-folder-with-archive", "demo-tfds-with-folder", "full-tfds-with-folder"])
def test_a_source_with_the_other_sources_input_is_one_line_naming_the_fix(profile, assignments, line, pets, tmp_path):
    """The combinations ExampleGen refused with a traceback from create_pipeline."""
    archive = tmp_path / "kagglecatsanddogs_5340.zip"
    archive.write_bytes(b"zip")
    fill = {"pets": pets, "zip": archive}
    config = apply_overrides(load_profile(profile), [assignment.format(**fill) for assignment in assignments])
    assert one_line(config) == line.format(**fill)


def test_splits_are_parsed_by_tfds_and_must_not_overlap():
    config_rules.check(demo("data.train_split=train[:1000]", "data.eval_split=train[1000:1200]",
                            "data.test_split=train[50%:60%]"))
    with pytest.raises(ConfigError, match="overlap"):
        config_rules.check(demo("data.eval_split=train[30%:50%]"))


def test_runtime_parameters_of_a_compiled_pipeline_follow_the_same_rules():
    config = load_profile("full")
    config_rules.check_runtime_parameters({"phase1_epochs": 3, "accuracy_bar": 0.5}, config)
    with pytest.raises(ConfigError) as raised:
        config_rules.check_runtime_parameters({"phase1_epochs": -1, "accuracy_bar": 1.5}, config)
    message = str(raised.value)
    assert "phase1_epochs=-1: must be an integer from 0 to 1000; e.g. --param phase1_epochs=20" in message
    assert "accuracy_bar=1.5: must be a number from 0 to 1" in message


def test_the_accelerator_is_an_nvidia_kubernetes_resource_or_a_vertex_ai_gpu_its_client_names():
    """Vertex AI's names are the GPU members of google-cloud-aiplatform's AcceleratorType enum,
    less the K80, which TensorFlow 2.21's CUDA build cannot use; TPUs and other vendors' resources
    cannot run the CUDA image."""
    from google.cloud.aiplatform_v1.types import AcceleratorType

    vertex_gpus = [name for name in AcceleratorType.__members__ if name.startswith("NVIDIA_")]
    assert {"NVIDIA_L4", "NVIDIA_TESLA_T4", "NVIDIA_TESLA_A100", "NVIDIA_H100_80GB"} <= set(vertex_gpus)
    for accelerator in [*vertex_gpus, "nvidia.com/gpu", "nvidia.com/mig-1g.5gb"]:
        config = demo("trainer.gpus=1", f"trainer.accelerator={accelerator}")
        if accelerator == "NVIDIA_TESLA_K80":
            assert "compute capability 3.7, below the 6.0" in one_line(config)
        else:
            config_rules.check(config)
    refused = [name for name in AcceleratorType.__members__ if not name.startswith("NVIDIA_")]
    for accelerator in [*refused, "amd.com/gpu", "nvidia.com/", "gpu", "NVIDIA_L5", ""]:
        line = one_line(demo("trainer.gpus=1", f"trainer.accelerator={accelerator}"))
        assert line.startswith(f"trainer.accelerator={accelerator}: must be nvidia.com/gpu")
        assert line.endswith("e.g. --set trainer.accelerator=nvidia.com/gpu")


def test_an_accelerator_without_gpus_is_refused():
    assert one_line(demo("trainer.accelerator=NVIDIA_L4")) == (
        "trainer.accelerator=NVIDIA_L4: applies only with trainer.gpus above 0 (the accelerators the Trainer task "
        "asks for); e.g. --set trainer.gpus=1")
    config_rules.check(demo("trainer.gpus=0", "trainer.accelerator=nvidia.com/gpu"))


def test_the_accelerator_stays_out_of_run_fns_custom_config():
    """Where the Kubeflow task runs is not how run_fn trains (and a spec without GPUs stays as it was)."""
    custom_config = demo("trainer.gpus=1", "trainer.accelerator=NVIDIA_L4").trainer.to_custom_config()
    assert "accelerator" not in custom_config and custom_config["gpus"] == 1
