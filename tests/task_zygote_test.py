"""The task zygote (tests/support/task_zygote.py) runs a module as `python -m` does: each
command below runs both ways, from the same cwd and environment, and gives the same output and
exit status; a zygote with a thread its imports started refuses to fork."""

import os
import subprocess
import sys

import pytest

from support import task_zygote

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = '''
import atexit, os, sys, threading, time
import numpy

if __name__ == "__main__":
    print("argv", sys.argv)
    print("path", sys.path[:2])
    print("cwd", os.getcwd(), "main", os.path.basename(sys.modules["__main__"].__file__))
    print("imported as probes.probe", "probes.probe" in sys.modules, hasattr(sys.modules["probes"], "probe"))
    print("stdin", repr(sys.stdin.read()))
    print("python threads", threading.active_count())
    print("numpy's random state", list(numpy.random.get_state()[1][1:4]))
    atexit.register(lambda: print("atexit ran", flush=True))
    print("to stderr", file=sys.stderr, flush=True)
    if sys.argv[1:] == ["raise"]:
        raise ValueError("boom")
    if sys.argv[1:] == ["thread"]:  # a non-daemon thread the interpreter waits for at exit
        threading.Thread(target=lambda: print("thread ran", flush=True)).start()
    if sys.argv[1:] == ["sleep"]:
        time.sleep(60)
    if sys.argv[1:] == ["message"]:
        sys.exit("a message")
    if sys.argv[1:] and sys.argv[1].isdigit():
        sys.exit(int(sys.argv[1]))
'''


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """A module `probes.probe` in a folder of its own (the cwd), the checkout on PYTHONPATH for
    the zygote's own module."""
    cwd = tmp_path_factory.mktemp("zygote_cwd")
    (cwd / "probes").mkdir()
    (cwd / "probes" / "__init__.py").write_text("")
    (cwd / "probes" / "probe.py").write_text(PROBE)
    (cwd / "threaded.py").write_text("import threading, time\n"
                                     "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    return {"cwd": str(cwd), "env": env, "logs": tmp_path_factory.mktemp("zygote_logs")}


@pytest.fixture(scope="module")
def zygote(setting):
    """A zygote that imported numpy's global random state and the probe itself."""
    zygote = task_zygote.Zygote(["numpy.random", "probes.probe"], cwd=setting["cwd"], env=setting["env"], log_dir=str(setting["logs"]))
    yield zygote
    zygote.close()


def from_scratch(setting, argv):
    finished = subprocess.run([sys.executable, "-m", "probes.probe", *argv], cwd=setting["cwd"], env=setting["env"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return finished.returncode, finished.stdout


def comparable(log, traceback_frames=True):
    """The log but numpy's random state (each process draws its own), and without the
    traceback's frames if not `traceback_frames`."""
    return [line for line in log.splitlines() if not line.startswith("numpy's random state")
            and (traceback_frames or not line.startswith(" "))]


def numpy_state(log):
    return next(line for line in log.splitlines() if line.startswith("numpy's random state"))


@pytest.mark.parametrize("argv", [[], ["0"], ["3"], ["message"], ["raise"], ["thread"]])
def test_a_command_runs_as_python_dash_m_runs_it(setting, zygote, argv):
    code, log = zygote.run("probes.probe", argv, "probe", timeout=60)
    expected_code, expected_log = from_scratch(setting, argv)
    assert code == expected_code
    # The traceback also has the zygote's frames (above the module's, the same lines).
    assert comparable(log, argv != ["raise"]) == comparable(expected_log, argv != ["raise"])
    assert "atexit ran" in log and "stdin ''" in log and "python threads 1" in log
    if argv == ["raise"]:
        assert log.count("Traceback (most recent call last):") == 1 and "ValueError: boom" in log


def test_each_command_draws_its_own_random_state(zygote):
    states = {numpy_state(zygote.run("probes.probe", [], "probe", timeout=60)[1]) for _ in range(3)}
    assert len(states) == 3


def test_a_command_over_its_time_is_killed(zygote):
    with pytest.raises(subprocess.TimeoutExpired):
        zygote.run("probes.probe", ["sleep"], "sleep", timeout=1)


def test_a_zygote_whose_imports_started_a_thread_does_not_fork(setting, tmp_path):
    zygote = task_zygote.Zygote(["threaded"], cwd=setting["cwd"], env=setting["env"], log_dir=str(tmp_path))
    with pytest.raises(task_zygote.ZygoteError, match="not forking with threads"):
        zygote.run("probes.probe", [], "probe", timeout=60)
    zygote.close()
