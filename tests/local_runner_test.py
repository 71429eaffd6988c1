"""The local runner's Beam arguments."""

from tfx.utils import dependency_utils

from pipeline.config import DEFAULT_IMAGE, load_profile
from pipeline.local_runner import beam_args


def test_direct_runner_multi_processing_with_one_worker_per_core_by_default(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    args = beam_args(load_profile("demo"))
    assert "--direct_running_mode=multi_processing" in args
    assert "--direct_num_workers=6" in args


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
