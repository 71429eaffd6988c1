"""Faults with real processes and signals, on one pipeline root (the demo profile via the CLI):

1. while run A runs, run B on the same root is refused at once (exit 2) naming A's process;
   A is then killed with SIGKILL in phase 1;
2. run C (started after A died: the kernel released A's lock) resumes phase 1 and is killed
   with SIGKILL in phase 2;
3. run D resumes phase 2 and, as soon as it has, gets Ctrl-C (SIGINT to its process group, as a
   terminal sends it): one line, exit 130, no traceback, nothing pushed;
4. run E finishes: one version pushed, blessed, with a history of every epoch exactly once and
   the epochs each run resumed at; the checkpoints are gone.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from components.serving.baseline import GATE_RECORD_SUFFIX
from pipeline.runners import lock as run_lock
from pipeline.cli import exit_status
from pipeline.config.settings import load_profile
from pipeline.pipeline import TRAINER_CHECKPOINTS
from support.small_disk import mounted_tmpfs

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("demo_inputs")]

PHASE1_EPOCHS = load_profile("demo").trainer.phase1_epochs
PHASE2_EPOCHS = 2
TOTAL_EPOCHS = PHASE1_EPOCHS + PHASE2_EPOCHS
WAIT_S = 900
# Every run trains the same way (the same settings: the same checkpoints). Phase 1 runs the
# base every epoch here, as on the direct path: on cached features its epochs take a few
# milliseconds each, too short to kill one from outside (tests/trainer/checkpoints_test.py
# resumes the cached path in process).
SETTINGS = ("--set", f"trainer.phase2_epochs={PHASE2_EPOCHS}", "--set", "trainer.phase1_feature_cache=false")


class DemoRun:
    """`python -m pipeline run --profile demo` in a process group of its own, output to files."""

    def __init__(self, root: str, name: str):
        self.root = root
        self.name = name
        self.stdout_path = os.path.join(root, f"{name}.stdout")
        self.stderr_path = os.path.join(root, f"{name}.stderr")
        command = [sys.executable, "-m", "pipeline", "run", "--profile", "demo",
                   "--pipeline-root", pipeline_root(root), "--serving-dir", os.path.join(root, "serving"),
                   *SETTINGS, "--summary-json", os.path.join(root, f"{name}.json")]
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(command, stdout=stdout, stderr=stderr, start_new_session=True)

    def signal_group(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def wait(self, timeout: float = WAIT_S) -> int:
        return self.process.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        return open(self.stdout_path).read()

    @property
    def stderr(self) -> str:
        return open(self.stderr_path).read()

    def summary(self) -> dict:
        return json.load(open(os.path.join(self.root, f"{self.name}.json")))

    def explain(self) -> str:
        return f"{self.name} stdout:\n{self.stdout[-3000:]}\n{self.name} stderr:\n{self.stderr[-4000:]}"


def pipeline_root(root: str) -> str:
    return os.path.join(root, "pipeline")


def epochs_done(root: str) -> int:
    states = glob.glob(os.path.join(pipeline_root(root), TRAINER_CHECKPOINTS, "*", "state.json"))
    if not states:
        return 0
    try:
        return max(json.load(open(path))["epochs_done"] for path in states)
    except (ValueError, OSError):  # being renamed into place just now
        return 0


def wait_until(run: DemoRun, done, waiting_for: str) -> None:
    """Polls `done()` while `run` runs; fails if it ends first or WAIT_S passes."""
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert run.process.poll() is None, f"{run.name} ended early\n{run.explain()}"
        assert time.monotonic() < deadline, f"{run.name}: still waiting for {waiting_for}\n{run.explain()}"
        time.sleep(0.2)


def wait_for_epochs(run: DemoRun, count: int) -> None:
    wait_until(run, lambda: epochs_done(run.root) >= count, f"epoch {count} to finish")


def wait_for_output(run: DemoRun, text: str) -> None:
    wait_until(run, lambda: text in run.stdout, repr(text))


def wait_for_lock_holder(run: DemoRun) -> None:
    """Until `run` holds the pipeline root's lock (it has written its process id there)."""
    lock = os.path.join(pipeline_root(run.root), run_lock.LOCK_FILE)

    def holds_lock() -> bool:
        try:
            return json.load(open(lock))["pid"] == run.process.pid
        except (OSError, ValueError, KeyError):
            return False

    wait_until(run, holds_lock, "it to hold the lock")


def resumed_line(epochs_done: int, phase: int) -> str:
    return f"[trainer] resuming after epoch {epochs_done}/{TOTAL_EPOCHS} (phase {phase})"


def served_versions(root: str) -> list[str]:
    base = os.path.join(root, "serving", load_profile("demo").model_name)
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("faults"))
    seen = {}

    a = DemoRun(root, "a")
    seen["a_pid"] = a.process.pid
    wait_for_lock_holder(a)
    b = DemoRun(root, "b")
    seen["b_status"] = b.wait(timeout=300)
    seen["b"] = b
    wait_for_epochs(a, 2)
    a.signal_group(signal.SIGKILL)
    a.wait()
    seen["killed_in_phase1"] = epochs_done(root)
    seen["versions_after_a"] = served_versions(root)

    c = DemoRun(root, "c")
    wait_for_epochs(c, PHASE1_EPOCHS + 1)
    c.signal_group(signal.SIGKILL)
    c.wait()
    seen["killed_in_phase2"] = epochs_done(root)
    seen["c"] = c

    d = DemoRun(root, "d")
    wait_for_output(d, resumed_line(seen["killed_in_phase2"], 2))
    d.signal_group(signal.SIGINT)
    seen["d_status"] = d.wait(timeout=300)
    seen["interrupted_at"] = epochs_done(root)
    seen["versions_after_d"] = served_versions(root)
    seen["d"] = d

    e = DemoRun(root, "e")
    seen["e_status"] = e.wait()
    seen["e"] = e
    seen["root"] = root
    return seen


def test_a_second_run_on_a_root_in_use_is_refused_at_once(faults):
    b = faults["b"]
    assert faults["b_status"] == exit_status.USAGE, b.explain()
    assert f"pipeline root '{pipeline_root(faults['root'])}' is in use by process" in b.stderr
    assert "wait for that run to finish, or pass another --pipeline-root" in b.stderr
    assert "started" not in b.stdout  # no component ran


def test_the_refusal_names_the_running_process(faults):
    holder = faults["b"].stderr.split("in use by process ")[1].split()[0]
    assert holder == str(faults["a_pid"])
    assert "(`python -m pipeline run --profile demo" in faults["b"].stderr


def test_a_run_killed_in_phase_1_pushes_nothing_and_the_next_run_resumes_phase_1(faults):
    assert 2 <= faults["killed_in_phase1"] < PHASE1_EPOCHS
    assert faults["versions_after_a"] == []
    assert resumed_line(faults["killed_in_phase1"], 1) in faults["c"].stdout, faults["c"].explain()


def test_ctrl_c_prints_one_line_exits_130_and_pushes_nothing(faults):
    d = faults["d"]
    assert faults["d_status"] == exit_status.INTERRUPTED, d.explain()
    assert resumed_line(faults["killed_in_phase2"], 2) in d.stdout
    assert faults["interrupted_at"] == faults["killed_in_phase2"]  # stopped before it finished an epoch
    lines = [line for line in d.stderr.splitlines() if line.startswith("[pipeline] interrupted")]
    assert lines == ["[pipeline] interrupted during Trainer; nothing was pushed. Run the same command again to "
                     "resume: finished components come from the cache and the Trainer from its last finished "
                     "epoch."], d.explain()
    for text in ("Traceback", "KeyboardInterrupt"):
        assert text not in d.stdout + d.stderr, d.explain()
    assert faults["versions_after_d"] == []


def test_the_run_after_the_faults_finishes_with_every_epoch_once(faults):
    e = faults["e"]
    assert faults["e_status"] == exit_status.PUSHED, e.explain()
    summary = e.summary()
    assert summary["blessed"]
    for component in ("TfdsExampleGen", "Transform"):
        assert summary["components"][component]["status"] == "cached"
    [version] = served_versions(faults["root"])  # one version, no staging folder
    history = json.load(open(os.path.join(summary["pushed_model_dir"], "training_history.json")))
    assert history["epoch"] == list(range(1, TOTAL_EPOCHS + 1))
    assert history["phase"] == [1] * PHASE1_EPOCHS + [2] * PHASE2_EPOCHS
    assert len(history["val_binary_accuracy"]) == TOTAL_EPOCHS
    # D stopped before it finished an epoch, so no checkpoint recorded its resumption.
    assert history["resumed_at_epoch"] == [faults["killed_in_phase1"] + 1, faults["interrupted_at"] + 1]
    assert os.listdir(os.path.join(pipeline_root(faults["root"]), TRAINER_CHECKPOINTS)) == []


def test_a_full_serving_disk_fails_the_run_naming_the_push_and_leaves_no_version(faults, tmp_path):
    """After the faults: the same root, a 1 MiB tmpfs as the serving folder (the model is larger)."""
    with mounted_tmpfs(tmp_path / "full-disk", "1m") as disk:
        result = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", "--profile", "demo",
             "--pipeline-root", pipeline_root(faults["root"]), "--serving-dir", str(disk),
             *SETTINGS, "--set", "evaluator.max_accuracy_drop=1.0"],
            capture_output=True, text=True, timeout=WAIT_S)
        leftovers = [str(path.relative_to(disk)) for path in disk.rglob("*")]
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[pipeline] FAILED: Pusher failed: PushFailed: pushing the model to" in result.stderr
    assert "no version was added there. Free space or fix the folder, then run again." in result.stderr
    model_dir = load_profile("demo").model_name
    # The model's folder at most: no version, no staging folder. Beside it, the Evaluator's record
    # of the verdict it blessed (components/evaluator/executor.py, record_gate_verdict).
    gate_record = f".{model_dir}{GATE_RECORD_SUFFIX}"
    assert [path for path in leftovers if path != gate_record] in ([], [model_dir])
