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
