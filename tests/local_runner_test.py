"""The local runner's Beam arguments."""

import re

import apache_beam as beam
import pytest
from apache_beam.runners.portability import fn_api_runner, prism_runner
from tfx.utils import dependency_utils

from pipeline.beam.arguments import beam_args
from pipeline.config.settings import DEFAULT_IMAGE, ConfigError, apply_overrides, load_profile
from pipeline.runners import preflight


def test_direct_runner_in_memory_by_default():
    args = beam_args(load_profile("demo"))
    assert "--direct_running_mode=in_memory" in args
    assert not [arg for arg in args if arg.startswith("--direct_num_workers")]


def test_multi_processing_with_one_worker_per_core_unless_told(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    config = apply_overrides(load_profile("demo"), ["beam_running_mode=multi_processing"])
    assert beam_args(config)[1:3] == ["--direct_running_mode=multi_processing", "--direct_num_workers=6"]
    config = apply_overrides(config, ["beam_workers=3"])
    assert "--direct_num_workers=3" in beam_args(config)


def test_beam_runs_in_process_without_trying_prism(monkeypatch):
    """Beam's DirectRunner would first hand the pipeline to Prism (downloaded when online)."""
    prism_attempts = []

    def record_prism_attempt(self, pipeline, options):
        prism_attempts.append(pipeline)
        raise RuntimeError("Prism is not available in this test")

    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", record_prism_attempt)
    with beam.Pipeline(argv=beam_args(load_profile("demo"))) as pipeline:
        _ = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2)
    assert type(pipeline.runner) is fn_api_runner.FnApiRunner
    assert not prism_attempts


@pytest.mark.parametrize("override, message", [
    ("beam_running_mode=threads", "beam_running_mode=threads: must be in_memory or multi_processing"),
    ("beam_workers=-1", "beam_workers=-1: must be 0 (one per CPU core) or a worker count"),
])
def test_bad_beam_settings_are_rejected_before_any_work(override, message):
    config = apply_overrides(load_profile("demo"), [override])
    with pytest.raises(ConfigError, match=re.escape(message)):
        preflight.run_all(config)


def test_the_cli_reports_a_bad_running_mode_as_a_usage_error(tmp_path, capsys):
    from pipeline.cli import main as cli

    status = cli.main(["run", "--profile", "demo", "--pipeline-root", str(tmp_path / "root"),
                       "--serving-dir", str(tmp_path / "serving"), "--set", "beam_running_mode=threads"])
    assert status == 2
    assert "beam_running_mode=threads: must be in_memory or multi_processing" in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


def test_user_beam_arguments_come_last_unchanged():
    extra = ["--runner=DataflowRunner", "--project=p", "--sdk_container_image=registry/image:1"]
    assert beam_args(load_profile("demo"), extra)[-3:] == extra


def test_tfx_builds_no_ephemeral_package_for_local_runs(monkeypatch):
    def fail():
        raise AssertionError("TFX would copy its installation into a temporary sdist")

    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", fail)
    args = beam_args(load_profile("demo"))
    assert dependency_utils.make_beam_dependency_flags(args) == args
    assert f"--sdk_container_image={DEFAULT_IMAGE}" in args
