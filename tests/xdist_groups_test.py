"""`make test`'s two workers make each shared session fixture once: a tiny suite of three
modules, two of them reading one session fixture named like tests/conftest.py's, run by
pytest-xdist with `--dist loadgroup` and our grouping hook (tests/support/xdist_groups.py)."""

import os
import subprocess
import sys

CONFTEST = '''
import os
import pytest
from support.xdist_groups import pytest_collection_modifyitems

@pytest.fixture(scope="session")
def demo_runs():
    with open(os.environ["MADE_LOG"], "a") as log:
        log.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    return "made"
'''
READER = '''
import os

def test_{name}_{number}(demo_runs):
    with open(os.environ["RAN_LOG"], "a") as log:
        log.write("{name} " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")
'''
OTHER = '''
import time

def test_other_{number}():
    time.sleep(0.2)
'''


def test_modules_sharing_a_session_fixture_run_on_one_worker_and_make_it_once(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    for name in ("first", "second"):
        (suite / f"{name}_test.py").write_text("".join(READER.format(name=name, number=n) for n in range(4)))
    (suite / "other_test.py").write_text("".join(OTHER.format(number=n) for n in range(8)))
    support = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": support, "MADE_LOG": str(tmp_path / "made"), "RAN_LOG": str(tmp_path / "ran")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                             "--dist", "loadgroup", "-o", "python_files=*_test.py", str(suite)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "16 passed" in result.stdout
    made = (tmp_path / "made").read_text().split()
    ran = [line.split() for line in (tmp_path / "ran").read_text().splitlines()]
    assert len(ran) == 8 and {worker for _, worker in ran} == set(made)
    assert len(made) == 1, f"the session fixture was made by {made}"


SCHEDULED_CONFTEST = '''
import os, time
import pytest
from support.demo_inputs import BackgroundMaker
from support.xdist_groups import DemoInputsFirst, pytest_collection_modifyitems

MAKER = "import time; time.sleep(4); open({made!r}, 'w').write(str(time.time()))"

@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    maker = BackgroundMaker(os.getcwd(), os.environ["MAKER_LOG"], command=MAKER.format(made=os.environ["MADE"]))
    return DemoInputsFirst(config, log, maker)

@pytest.fixture(scope="session")
def demo_inputs():
    while not os.path.exists(os.environ["MADE"]):
        time.sleep(0.1)

@pytest.fixture(autouse=True)
def record_start(request):
    with open(os.environ["STARTS"], "a") as log:
        log.write(f"{time.time()} {os.environ['PYTEST_XDIST_WORKER']} {request.node.module.__name__}\\n")
'''
NEEDS_INPUTS = '''
import pytest
pytestmark = pytest.mark.usefixtures("demo_inputs")

def test_{name}_{number}():
    pass
'''
QUICK = '''
import time

def test_{name}_{number}():
    time.sleep(0.3)
'''


def test_while_the_inputs_are_made_the_workers_take_the_groups_that_do_not_need_them(tmp_path):
    """The scheduler starts the maker once a collected test needs the inputs; no worker takes a
    group that needs them before the maker has ended (xdist's own order, most tests first, would
    start with one), and then those groups go first (xdist's would leave the smaller to the end)."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(SCHEDULED_CONFTEST)
    for name, tests in (("runs_a", 4), ("runs_b", 2)):  # xdist's order: runs_a first, runs_b last
        (suite / f"{name}_test.py").write_text("".join(NEEDS_INPUTS.format(name=name, number=n) for n in range(tests)))
    for number in range(16):
        (suite / f"quick_{number}_test.py").write_text("".join(QUICK.format(name=number, number=n) for n in range(3)))
    support = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": support, "MADE": str(tmp_path / "made"), "STARTS": str(tmp_path / "starts"),
           "MAKER_LOG": str(tmp_path / "maker.log")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                             "--dist", "loadgroup", "-o", "python_files=*_test.py", str(suite)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    made_at = float((tmp_path / "made").read_text())
    starts = sorted((float(at), worker, module) for at, worker, module in
                    (line.split() for line in (tmp_path / "starts").read_text().splitlines()))
    needing = [at for at, _, module in starts if module.startswith("runs_")]
    assert len(needing) == 6 and min(needing) >= made_at
    first_per_worker = {worker: module for _, worker, module in reversed(starts)}
    assert all(module.startswith("quick_") for module in first_per_worker.values()), starts
    quick_after_the_runs = [at for at, _, module in starts if module.startswith("quick_") and at > max(needing)]
    assert quick_after_the_runs, starts
