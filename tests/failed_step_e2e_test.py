"""A Beam step that fails, through `python -m pipeline run` (the demo, on one pipeline root):

1. a Beam job on a runner named only with `--beam-arg`s (PortableRunner, a real local job
   service, an EXTERNAL worker pool at an address nothing listens on): the job service cannot
   start a worker and the job fails;
2. the same root again with Beam in process, after the data TFDS prepared in run 1 was
   corrupted on disk: a DoFn of ExampleGen raises (TensorFlow's DataLossError) while reading it.

Each exits 1 with no traceback on the console; its last line names the step, the cause and
the step's log file, which holds the traceback. Run 1 also prepares TFDS's data with the console
captured (not a terminal): no progress bar's cursor-movement codes.
"""

import glob
import os
import re
import socket

import pytest

from conftest import run_demo
from pipeline.beam import services as beam_services
from pipeline.cli import exit_status

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("demo_inputs")]

# No pre-trained base to make: ExampleGen, the first step, is where both runs fail.
NO_BASE = ("--set", "trainer.weights=none")
FAILED_LINE = re.compile(r"\[pipeline\] FAILED: TfdsExampleGen failed: (?P<cause>.*) \(traceback in (?P<log>\S+)\)")
CURSOR_MOVEMENT = re.compile(r"\x1b\[\d*[A-H]")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def corrupt_prepared_data(root: str) -> None:
    """Zeros in the middle of the TFRecord shard TFDS prepared: its records' checksums fail."""
    [shard] = glob.glob(os.path.join(root, "pipeline", "tfds", "*", "cats_vs_dogs", "*", "cats_vs_dogs-train.tfrecord-*"))
    with open(shard, "r+b") as file:
        file.seek(os.path.getsize(shard) // 2)
        file.write(bytes(64))


@pytest.fixture(scope="module")
def failed_runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("failed_step"))
    with beam_services.running(log_dir=os.path.join(root, "beam-services")) as services:
        dead_pool = f"127.0.0.1:{free_port()}"
        portable, _ = run_demo(root, *NO_BASE, "--beam-arg=--runner=PortableRunner",
                               f"--beam-arg=--job_endpoint={services.job_endpoint}",
                               "--beam-arg=--environment_type=EXTERNAL", f"--beam-arg=--environment_config={dead_pool}")
    corrupt_prepared_data(root)
    in_dofn, _ = run_demo(root, *NO_BASE)
    return {"root": root, "dead_pool": dead_pool, "portable": portable, "in_dofn": in_dofn}


def failed_line(run) -> re.Match:
    last = run.stderr.strip().splitlines()[-1]
    match = FAILED_LINE.fullmatch(last)
    assert match, run.stderr[-3000:]
    return match


def assert_one_line_and_the_traceback_in_the_log(run, root):
    assert run.returncode == exit_status.FAILED, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    log = failed_line(run)["log"]
    assert log.startswith(os.path.join(root, "pipeline", "logs", "")) and log.endswith("/TfdsExampleGen.log")
    text = open(log).read()
    assert "TfdsExampleGen failed:\nTraceback (most recent call last):" in text
    return text


def test_a_job_whose_worker_pool_is_unreachable_fails_on_one_line_naming_the_address(failed_runs):
    run, pool = failed_runs["portable"], failed_runs["dead_pool"]
    log = assert_one_line_and_the_traceback_in_the_log(run, failed_runs["root"])
    cause = failed_line(run)["cause"]
    assert cause.startswith("RuntimeError: Pipeline job-") and "gRPC UNAVAILABLE" in cause
    assert f"{pool}: Failed to connect to remote host: Connection refused" in cause
    # The job service's own report of the failure, which Beam's PortableRunner logs, is in the log.
    assert "ERROR root: Traceback (most recent call last):" in log and "in start_worker" in log


def test_a_dofn_that_raises_fails_on_one_line_with_its_exception(failed_runs):
    run = failed_runs["in_dofn"]
    log = assert_one_line_and_the_traceback_in_the_log(run, failed_runs["root"])
    cause = failed_line(run)["cause"]
    assert re.fullmatch(r"RuntimeError: DataLossError: corrupted record at \d+ \[while running '[^']+'\]", cause), cause
    assert "ERROR apache_beam.runners.common:" in log and "DataLossError" in log


def test_a_console_that_is_not_a_terminal_gets_no_progress_bars(failed_runs):
    run = failed_runs["portable"]
    assert "Downloading and preparing dataset" in run.stdout  # TFDS prepared its data in this run
    assert not CURSOR_MOVEMENT.search(run.stdout + run.stderr)
