"""Session fixtures the test modules share: each pipeline run is made once, and every test that
needs such a run reads it. Tests that must break a run (tests/faults_test.py) keep roots of
their own.

`make test` runs two pytest workers (pytest-xdist, `--dist loadgroup`): every session fixture
below but `pushed_model` (seconds to make), and every test module (its module fixtures), is
made by one worker only: tests/support/xdist_groups.py puts all the tests that reach one of
them into one group. `pushed_model` and `former_export` are made once too, by the first worker
that needs each, under a lock in the session's temporary root (beside the workers' folders).

The fixtures that need TensorFlow import it when first used: pytest-xdist's controller loads
this file too, before it starts the workers, and runs no test."""

import fcntl
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile

import pytest

from pipeline.cli import exit_status
from support import container_host, demo_inputs as demo_inputs_lib
from support.xdist_groups import DemoInputsFirst
from support.xdist_groups import pytest_collection_modifyitems  # noqa: F401 (a hook pytest finds here)

# The first demo run sets a bar other than the profile's, a config change the run page shows.
FIRST_RUN_SETTINGS = ("--set", "evaluator.accuracy_bar=0.6")
# The compiled run's runtime parameters, which reach run_fn and the Evaluator: two frozen-base
# epochs, no fine-tuning.
COMPILED_OVERRIDES = ("--param", "phase1_epochs=2", "--param", "phase2_epochs=0", "--param", "accuracy_bar=0.6")
# The second and third demo runs' Trainer (the same, so the third reuses the second's model):
# another seed, two frozen-base epochs and no fine-tuning (about 0.7 accuracy, above the second
# run's bar).
RETRAINED = ("--set", "trainer.seed=7", "--set", "trainer.phase1_epochs=2", "--set", "trainer.phase2_epochs=0")
SECOND_RUN_BAR = 0.5
# The controller's background maker of the demo's inputs (under xdist).
DEMO_INPUTS_MAKER = pytest.StashKey["demo_inputs_lib.BackgroundMaker"]()


def pipeline_cli(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    """`python -m pipeline ARGS` in a process of its own, output captured."""
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=timeout)


def run_demo(root: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """`python -m pipeline run --profile demo` with `root`'s pipeline root and serving folder."""
    summary_path = os.path.join(root, f"summary-{len(glob.glob(os.path.join(root, 'summary-*')))}.json")
    result = pipeline_cli("run", "--profile", "demo", "--pipeline-root", os.path.join(root, "pipeline"),
                          "--serving-dir", os.path.join(root, "serving"), "--summary-json", summary_path, *extra)
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else None
    return result, summary


def pytest_configure(config):
    """Ctrl-C reaches the runs the tests start as it does from a terminal. A launcher that ignores
    SIGINT (a background job of a shell without job control) passes that on to every process
    the suite starts, and the tests that stop a run with SIGINT would see it run on."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under `--dist loadgroup`, the scheduler that keeps the workers busy while the demo's inputs
    are made in the background (tests/support/xdist_groups.py)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    maker = demo_inputs_lib.BackgroundMaker(
        str(config.rootpath), str(config._tmp_path_factory.getbasetemp() / "demo_inputs.log"),
        announce=reporter.write_line if reporter else print)
    config.stash[DEMO_INPUTS_MAKER] = maker
    return DemoInputsFirst(config, log, maker)


def pytest_sessionfinish(session):
    maker = session.config.stash.get(DEMO_INPUTS_MAKER, None)
    if maker is not None:
        maker.stop()


def pytest_terminal_summary(terminalreporter, config):
    maker = config.stash.get(DEMO_INPUTS_MAKER, None)
    if maker is not None and maker.failure():
        terminalreporter.write_line(maker.failure())


@pytest.fixture(scope="session")
def demo_inputs() -> None:
    """The demo's generated inputs, made before the test (or waited for while the background
    maker makes them): the tests that run the demo profile need them."""
    demo_inputs_lib.make()


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory, demo_inputs):
    """Four demo runs in one root: the first pushes; the second, retrained (another seed, less
    training), is compared against the first; the third, its model, meets no gate (a bar of 1.0);
    the fourth, an untrained head with no bar, is worse than the model served.
    (root, [(result, summary)])."""
    root = str(tmp_path_factory.mktemp("demo"))
    first = run_demo(root, *FIRST_RUN_SETTINGS)
    assert first[0].returncode == exit_status.PUSHED, first[0].stdout[-3000:] + first[0].stderr[-5000:]
    second = run_demo(root, *RETRAINED, "--set", f"evaluator.accuracy_bar={SECOND_RUN_BAR}",
                      "--set", "evaluator.max_accuracy_drop=1.0")
    assert second[0].returncode == exit_status.PUSHED, second[0].stdout[-3000:] + second[0].stderr[-5000:]
    third = run_demo(root, *RETRAINED, "--set", "evaluator.accuracy_bar=1.0")
    worse = run_demo(root, "--set", "trainer.phase1_epochs=0", "--set", "trainer.phase2_epochs=0",
                     "--set", "evaluator.accuracy_bar=0")
    return root, [first, second, third, worse]


@pytest.fixture(scope="session")
def compiled_runs(tmp_path_factory, demo_inputs):
    """The demo compiled with `compile-kubeflow --local` and run by `run-compiled` (kfp.local),
    every task a process of this environment. (root, [(result, summary)]). The same spec run in
    the image, against a model already served, is tests/image_run_test.py's."""
    root = tmp_path_factory.mktemp("compiled")
    spec = root / "demo.yaml"
    compiled = pipeline_cli("compile-kubeflow", "--local", "--profile", "demo", "--output", str(spec),
                            "--pipeline-root", str(root / "pipeline"), "--set", f"serving_dir={root / 'serving'}")
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    summary_path = root / "summary-1.json"
    result = pipeline_cli("run-compiled", str(spec), *COMPILED_OVERRIDES, "--pipeline-root", str(root / "kfp"),
                          "--summary-json", str(summary_path))
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return root, [(result, summary)]


@pytest.fixture(scope="session")
def pushed_model(tmp_path_factory) -> str:
    """`<root>/serving_model/cats_vs_dogs/<version>`: the small serving model, exported and pushed."""
    from support.serving_model import export_and_push  # when used (the module's docstring)

    return _made_once(tmp_path_factory, "pushed_model", export_and_push)


@pytest.fixture(scope="session")
def former_export(tmp_path_factory) -> str:
    """The same small model exported the former way (a tf.Module), which TF Serving's loader refuses."""
    from support.module_export import small_module_export  # when used (the module's docstring)

    return _made_once(tmp_path_factory, "former_export", small_module_export)


def _made_once(tmp_path_factory, name: str, make) -> str:
    """`make(root)` once per session: under pytest-xdist the workers share what it made (about
    15 s each), the first that needs it making it while the others wait on the lock."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(str(tmp_path_factory.mktemp(name)))
    shared = tmp_path_factory.getbasetemp().parent / name
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = shared / "made"
        if not made.exists():
            made.write_text(make(tempfile.mkdtemp(dir=shared)))  # a failed attempt leaves its own folder
        return made.read_text()


@pytest.fixture(scope="session")
def engine() -> str:
    """The host's container engine (docker or podman); skips with the reason where none can build."""
    reason = container_host.why_no_engine()
    if reason:
        pytest.skip(reason)
    return container_host.engine_name()


@pytest.fixture(scope="session")
def image(engine) -> str:
    """The project image built by `make image REUSE=1` (reused when built from the same inputs)."""
    return container_host.build_image()


@pytest.fixture(scope="session")
def gpu_image(engine) -> str:
    """The GPU image (TensorFlow's CUDA libraries) built by `make image-gpu REUSE=1`."""
    return container_host.build_image("image-gpu")


@pytest.fixture(scope="session")
def docker_host(engine):
    """The Docker API's address: Podman's service (started here if it is not running, and
    stopped after the session if so), or the Docker engine's default."""
    if engine != "podman":
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    address, started = container_host.start_podman_service()
    yield address
    if started:
        container_host.stop_podman_service()
