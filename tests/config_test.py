"""Profiles and `--set` overrides: typed, checked, with errors that name the key and the fix."""

import os

import pytest

from pipeline.config import settings as config_lib


def test_paths_are_the_checkouts():
    """Outputs, generated data and the serving folder land at the checkout's top, wherever the
    settings module sits in the package."""
    assert os.path.isfile(os.path.join(config_lib.REPO_ROOT, "pyproject.toml"))
    assert config_lib.DEFAULT_SAMPLE_ARCHIVE.startswith(os.path.join(config_lib.REPO_ROOT, "data", "generated"))
    assert config_lib.full_profile().serving_dir == os.path.join(config_lib.REPO_ROOT, "serving_model")


def test_full_profile_is_the_recipe():
    config = config_lib.load_profile("full")
    trainer = config.trainer
    assert (trainer.base, trainer.weights, trainer.image_size, trainer.batch_size) == ("xception", "imagenet", 150, 32)
    assert (trainer.phase1_epochs, trainer.phase2_epochs) == (20, 10)
    assert (trainer.phase1_learning_rate, trainer.phase2_learning_rate) == (1e-3, 1e-5)
    assert config.evaluator.accuracy_bar == 0.95
    assert (config.data.train_split, config.data.eval_split, config.data.test_split) == (
        "train[:40%]", "train[40%:50%]", "train[50%:60%]")
    assert config.data.archive is None and not config.sample.enabled


def test_demo_profile_uses_the_generated_sample_and_a_small_base():
    config = config_lib.load_profile("demo")
    assert config.sample.enabled
    assert config.data.archive.endswith("data/generated/kagglecatsanddogs_5340.zip")
    assert config.trainer.base == "mobilenet_v3_small"
    assert config.sample.pretrain_base and config.trainer.weights.endswith("data/generated/mobilenet_v3_small_64.weights.h5")
    assert config.pipeline_name != config_lib.load_profile("full").pipeline_name


def test_profiles_are_independent_copies():
    first = config_lib.load_profile("demo")
    first.trainer.phase1_epochs = 99
    assert config_lib.load_profile("demo").trainer.phase1_epochs != 99


def test_overrides_are_parsed_by_field_type():
    config = config_lib.apply_overrides(config_lib.load_profile("demo"), [
        "trainer.phase2_epochs=3",
        "trainer.phase2_learning_rate=2e-5",
        "trainer.mixed_precision=true",
        "data.archive=none",
        "data.train_split=train[:20%]",
        "model_name=pets",
    ])
    assert config.trainer.phase2_epochs == 3
    assert config.trainer.phase2_learning_rate == 2e-5
    assert config.trainer.mixed_precision == "true"
    assert config.data.archive is None
    assert config.data.train_split == "train[:20%]"
    assert config.model_name == "pets"


@pytest.mark.parametrize("assignment, message", [
    ("trainer.phase2_epoch=3", "unknown config key 'trainer.phase2_epoch'"),
    ("trainer=3", "unknown config key 'trainer'"),
    ("profile=full", "unknown config key 'profile'"),
    ("trainer.phase2_epochs=three", "expected an integer"),
    ("evaluator.accuracy_bar=high", "expected a number"),
    ("trainer.phase2_epochs", "expected KEY=VALUE"),
])
def test_bad_overrides_are_clear_errors(assignment, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.apply_overrides(config_lib.load_profile("demo"), [assignment])


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(config_lib.ConfigError, match="unknown profile 'fast'.*demo, full"):
        config_lib.load_profile("fast")


def test_paths_resolve_under_the_pipeline_root(tmp_path):
    config = config_lib.load_profile("demo")
    config.pipeline_root = str(tmp_path / "root")
    config.serving_dir = str(tmp_path / "serving")
    assert config.metadata_path == str(tmp_path / "root" / "metadata" / "metadata.sqlite")
    assert config.model_serving_dir == str(tmp_path / "serving" / config.model_name)


def test_gzip_output_reaches_the_example_gen():
    from components.example_gen import spec
    from pipeline.pipeline import create_pipeline

    def example_gen_of(config):
        (node,) = [c for c in create_pipeline(config).components if c.id == "TfdsExampleGen"]
        return node.exec_properties[spec.GZIP_OUTPUT_KEY]

    full = config_lib.load_profile("full")  # TFDS download mode: needs no archive on disk
    assert example_gen_of(full) is False
    assert example_gen_of(config_lib.apply_overrides(full, ["data.gzip_output=true"])) is True


@pytest.fixture
def made(monkeypatch):
    """prepare_inputs with the generators recorded instead of run: {"sample": [...], "base": [...]}."""
    from pipeline.runners import inputs

    calls = {"sample": [], "base": []}
    monkeypatch.setattr(inputs, "ensure_sample_archive", lambda path, **kw: calls["sample"].append(str(path)))
    monkeypatch.setattr(inputs, "ensure_pretrained_base", lambda path, **kw: calls["base"].append(str(path)))
    return calls


def prepared(*assignments, profile="demo"):
    from pipeline.runners import inputs

    config = config_lib.apply_overrides(config_lib.load_profile(profile), list(assignments))
    config.pipeline_root = "/runs/root"
    inputs.prepare_inputs(config)
    return config


def test_the_demo_makes_its_inputs_at_their_own_paths(made):
    config = prepared()
    assert made == {"sample": [config_lib.DEFAULT_SAMPLE_ARCHIVE], "base": [config_lib.GENERATED_BASE_WEIGHTS]}
    assert config.data.tfds_data_dir == "/runs/root/tfds/sample-450"


def test_nothing_is_written_at_a_path_a_user_named(made, tmp_path):
    """Issue 25: a user's weights path (or archive) was the generators' output path."""
    weights, archive = tmp_path / "mine.weights.h5", tmp_path / "kagglecatsanddogs_5340.zip"
    weights.write_bytes(b"h5")
    archive.write_bytes(b"zip")
    config = prepared(f"trainer.weights={weights}", f"data.archive={archive}")
    assert made == {"sample": [], "base": []}
    assert config.data.tfds_data_dir is None  # no sample data dir for the user's archive
    assert weights.read_bytes() == b"h5" and archive.read_bytes() == b"zip"
    prepared("trainer.weights=imagenet", "data.archive=none")  # TFDS downloads; nothing generated
    assert made == {"sample": [], "base": []}


def test_the_folder_source_makes_and_reads_no_sample_archive(made, tmp_path):
    from pipeline.pipeline import create_pipeline

    for name in ("Cat", "Dog"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.jpg").write_bytes(b"jpeg")
    for extra in ([], ["data.archive=none"]):
        config = prepared("data.source=folder", f"data.folder={tmp_path}", *extra)
        assert config.data.archive is None and config.data.tfds_data_dir is None
        create_pipeline(config)  # raised "archive=... is only read with source='tfds'" before
    assert made == {"sample": [], "base": [config_lib.GENERATED_BASE_WEIGHTS] * 2}


def test_the_full_profile_makes_nothing(made):
    prepared(profile="full")
    assert made == {"sample": [], "base": []}
