"""`python -m pipeline run`: bad input is a usage error (exit 2) before any component runs.

The command line runs in this process (`pipeline.cli.main.main`, what `python -m pipeline`
calls), its output captured: each case then costs milliseconds instead of a process that
imports TensorFlow."""

import contextlib
import io
import os
import subprocess

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.cli import exit_status
from pipeline.cli import main as cli


def run_cli(*args) -> subprocess.CompletedProcess:
    """`python -m pipeline ARGS`: its exit status, standard output and standard error."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = cli.main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            status = exit_.code
    return subprocess.CompletedProcess(["python", "-m", "pipeline", *args], status, stdout.getvalue(), stderr.getvalue())


def assert_usage_error(result, message):
    assert result.returncode == exit_status.USAGE, result.stderr[-2000:]
    assert message in result.stderr
    assert "started" not in result.stdout  # no component ran


@pytest.mark.parametrize("args, message", [
    (["--profile", "fast"], "unknown profile 'fast'"),
    (["--set", "trainer.phase9_epochs=1"], "unknown config key 'trainer.phase9_epochs'"),
    (["--set", "trainer.phase2_epochs=ten"], "--set trainer.phase2_epochs=ten: expected an integer"),
    (["--profile", "full", "--archive", "/nowhere/kagglecatsanddogs_5340.zip"], "data.archive=/nowhere/kagglecatsanddogs_5340.zip: must be none (TFDS downloads it) or the path of an existing"),
])
def test_bad_configuration_is_a_usage_error(args, message, tmp_path):
    result = run_cli("run", "--pipeline-root", str(tmp_path / "root"), "--serving-dir", str(tmp_path / "serving"), *args)
    assert_usage_error(result, message)


def test_unwritable_pipeline_root_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("run", "--pipeline-root", str(blocker / "root"), "--serving-dir", str(tmp_path / "serving"))
    assert_usage_error(result, f"pipeline root '{blocker / 'root'}' is not writable")


def test_unwritable_serving_folder_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("run", "--pipeline-root", str(tmp_path / "root"), "--serving-dir", str(blocker))
    assert_usage_error(result, "serving folder")
    assert "--serving-dir" in result.stderr


def test_pipeline_root_of_another_pipeline_is_a_usage_error(tmp_path):
    root = tmp_path / "root"
    os.makedirs(root / "metadata")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(root / "metadata" / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    type_id = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline"))
    store.put_contexts([metadata_store_pb2.Context(type_id=type_id, name="someone-elses-pipeline")])
    result = run_cli("run", "--pipeline-root", str(root), "--serving-dir", str(tmp_path / "serving"))
    assert_usage_error(result, "holds ML Metadata of another pipeline (someone-elses-pipeline)")


def test_missing_subcommand_is_a_usage_error():
    result = run_cli()
    assert result.returncode == exit_status.USAGE


@pytest.mark.parametrize("setting, message", [
    ("trainer.phase1_epochs=-1", "trainer.phase1_epochs=-1: must be an integer from 0 to 1000; "
                                 "e.g. --set trainer.phase1_epochs=20"),
    ("evaluator.accuracy_bar=1.5", "evaluator.accuracy_bar=1.5: must be a number from 0 to 1"),
    ("trainer.batch_size=0", "trainer.batch_size=0: must be an integer from 1 to 4096; e.g. --set trainer.batch_size=32"),
    ("trainer.image_size=0", "trainer.image_size=0: must be an integer from 32 to 1024 (keras.applications "
                             "accepts no smaller input for base mobilenet_v3_small)"),
])
def test_a_setting_that_cannot_work_stops_the_run_before_anything_runs(setting, message, tmp_path):
    result = run_cli("run", "--pipeline-root", str(tmp_path / "root"), "--serving-dir", str(tmp_path / "serving"),
                     "--set", setting)
    assert_usage_error(result, message)
    assert not (tmp_path / "root").exists() and not (tmp_path / "serving").exists()


def test_compile_kubeflow_checks_settings_by_the_same_rules(tmp_path):
    compiled = run_cli("compile-kubeflow", "--profile", "demo", "--local", "--output", str(tmp_path / "p.yaml"),
                       "--set", "trainer.batch_size=0", "--set", "evaluator.accuracy_bar=1.5")
    assert_usage_error(compiled, "trainer.batch_size=0: must be an integer from 1 to 4096")
    assert "evaluator.accuracy_bar=1.5: must be a number from 0 to 1" in compiled.stderr
    assert not (tmp_path / "p.yaml").exists()


def test_an_archive_that_is_not_the_kaggle_zip_is_a_usage_error(tmp_path):
    archive = tmp_path / "kagglecatsanddogs_5340.zip"
    archive.write_text("not a zip")
    result = run_cli("run", "--profile", "full", "--archive", str(archive), "--pipeline-root", str(tmp_path / "root"),
                     "--serving-dir", str(tmp_path / "serving"))
    assert_usage_error(result, f"Archive '{archive}' is not a zip file")
