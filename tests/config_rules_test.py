"""The rules table: every setting has a rule, and each rule refuses what cannot work."""

import pytest

from pipeline.config import rules as config_rules
from pipeline.config.settings import ConfigError, apply_overrides, load_profile


def demo(*assignments):
    return apply_overrides(load_profile("demo"), list(assignments))


def test_every_config_key_has_a_rule():
    for profile in ("demo", "full"):
        assert config_rules.unruled_keys(load_profile(profile)) == []
    assert len(set(config_rules.rule_keys())) == len(config_rules.RULES)


@pytest.mark.parametrize("profile", ["demo", "full"])
def test_the_profiles_break_no_rule(profile):
    config_rules.check(load_profile(profile))


# (assignment, what the message must say is allowed)
BAD_SETTINGS = [
    ("pipeline_name=Cats_Dogs", "lowercase letters, digits and '-'"),
    ("model_name=../escape", "a folder name"),
    ("data.source=s3", "tfds or folder"),
    ("data.folder=/nowhere", None),  # not checked unless data.source=folder: see below
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
    ("trainer.seed=-5", "an integer from 0 to 2147483647"),
    ("evaluator.accuracy_bar=1.5", "a number from 0 to 1"),
    ("evaluator.max_accuracy_drop=-0.1", "a number from 0 to 1"),
    ("beam_running_mode=threads", "in_memory or multi_processing"),
    ("beam_workers=-1", "0 (one per CPU core) or a worker count up to 256"),
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


def test_a_local_weights_file_must_exist_unless_the_demo_makes_it(tmp_path):
    missing = str(tmp_path / "base.weights.h5")
    config_rules.check(demo(f"trainer.weights={missing}"))  # sample.pretrain_base writes it on first use
    with pytest.raises(ConfigError, match="a local weights file that exists"):
        config_rules.check(demo(f"trainer.weights={missing}", "sample.pretrain_base=false"))
    (tmp_path / "base.weights.h5").write_bytes(b"h5")
    config_rules.check(demo(f"trainer.weights={missing}", "sample.pretrain_base=false"))
    for weights in ("imagenet", "none", "gs://bucket/base.weights.h5"):
        config_rules.check(demo(f"trainer.weights={weights}", "sample.pretrain_base=false"))


def test_a_folder_source_needs_an_existing_folder(tmp_path):
    config_rules.check(demo("data.folder=/nowhere"))  # ignored: the source is tfds
    with pytest.raises(ConfigError, match="data.folder=/nowhere: must be an existing folder"):
        config_rules.check(demo("data.source=folder", "data.folder=/nowhere"))
    config_rules.check(demo("data.source=folder", f"data.folder={tmp_path}"))


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
