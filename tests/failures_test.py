"""A failed step on one line, its tracebacks in the step's log file (pipeline/runners/failures.py):
the causes of real failures' messages, and the error records of a real Beam pipeline whose DoFn
raises, in this process (Beam's in-process runner, as local runs use it).
tests/failed_step_e2e_test.py runs the CLI into both failures."""

import io
import logging

import apache_beam as beam
import pytest

from pipeline.beam.arguments import beam_args
from pipeline.config.settings import load_profile
from pipeline.runners import failures, local

# What Beam's PortableRunner raised when its job service could not start an SDK worker (a worker
# pool nothing listens on); the job's traceback is inside the message.
PORTABLE_JOB_FAILED = '''Pipeline job-5f97 failed in state FAILED: Error running pipeline.
Traceback (most recent call last):
  File "/venv/apache_beam/runners/portability/local_job_service.py", line 293, in _run_job
    self.result = self._invoke_runner()
                  ~~~~~~~~~~~~~~~~~~~^^
  File "/venv/grpc/_channel.py", line 999, in _end_unary_response_blocking
    raise _InactiveRpcError(state)  # pytype: disable=not-instantiable
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
grpc._channel._InactiveRpcError: <_InactiveRpcError of RPC that terminated with:
\tstatus = StatusCode.UNAVAILABLE
\tdetails = "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:41993: Failed to connect to remote host: Connection refused"
\tdebug_error_string = "UNAVAILABLE:failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:41993: Failed to connect to remote host: Connection refused"
>
'''
# What Beam's in-process runner raised when a DoFn of ExampleGen read a corrupt TFRecord.
IN_PROCESS_DOFN_FAILED = (
    "tensorflow.python.framework.errors_impl.DataLossError: {{function_node __wrapped__IteratorGetNext_output_"
    "types_3_device_/job:localhost/replica:0/task:0/device:CPU:0}} corrupted record at 28933893 "
    "[Op:IteratorGetNext] name: [while running 'InputToRecord[test]/ReadTfds/ReadFromTFDS/FlatMap(load_shard)']")


def test_a_portable_jobs_failure_reads_as_the_grpc_status_and_details_it_ends_with():
    assert failures.one_line(RuntimeError(PORTABLE_JOB_FAILED)) == (
        "RuntimeError: Pipeline job-5f97 failed in state FAILED: Error running pipeline. gRPC UNAVAILABLE: failed to "
        "connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:41993: Failed to connect to remote host: "
        "Connection refused")


def test_a_tensorflow_error_in_a_dofn_reads_without_its_op_decorations():
    assert failures.one_line(RuntimeError(IN_PROCESS_DOFN_FAILED)) == (
        "RuntimeError: DataLossError: corrupted record at 28933893 "
        "[while running 'InputToRecord[test]/ReadTfds/ReadFromTFDS/FlatMap(load_shard)']")


def test_the_last_of_chained_tracebacks_gives_the_cause_and_a_plain_message_stays():
    chained = ("Job failed.\nTraceback (most recent call last):\n  File \"a.py\", line 1, in f\n    g()\nKeyError: 'x'\n\n"
               "During handling of the above exception, another exception occurred:\n\n"
               "Traceback (most recent call last):\n  File \"b.py\", line 2, in h\n    raise OSError('disk full')\n"
               "OSError: [Errno 28] No space left on device: '/srv/models/3'\n")
    assert failures.without_traceback(chained) == "Job failed. OSError: [Errno 28] No space left on device: '/srv/models/3'"
    assert failures.one_line(OSError("disk full")) == "OSError: disk full"


def test_pipeline_failed_names_the_step_the_cause_and_the_log():
    failure = local.PipelineFailed("TfdsExampleGen", RuntimeError(PORTABLE_JOB_FAILED), "/root/logs/t/TfdsExampleGen.log")
    assert "\n" not in str(failure)
    assert str(failure).startswith("TfdsExampleGen failed: RuntimeError: Pipeline job-5f97 failed in state FAILED")
    assert str(failure).endswith("Connection refused (traceback in /root/logs/t/TfdsExampleGen.log)")


class BadRecord(ValueError):
    pass


def raise_on(value: str) -> str:
    if value == "b":
        raise BadRecord(f"cannot read record {value!r}")
    return value


@pytest.fixture
def console():
    """The root logger's console as a string, alone (pytest's own handlers set aside)."""
    root = logging.getLogger()
    stream, kept = io.StringIO(), root.handlers[:]
    root.handlers = [logging.StreamHandler(stream)]
    yield stream
    root.handlers = kept


def test_a_dofn_that_raises_logs_its_traceback_to_the_steps_log_not_the_console(tmp_path, console):
    logs = failures.StepLogs(str(tmp_path / "logs"), lambda: "Transform")
    with logs, pytest.raises(Exception) as raised:
        with beam.Pipeline(argv=beam_args(load_profile("demo"))) as pipeline:
            _ = pipeline | beam.Create(["a", "b"]) | "ReadRecords" >> beam.Map(raise_on)
    path = logs.write_failure("Transform", raised.value)

    assert "Traceback" not in console.getvalue()
    cause = failures.one_line(raised.value)
    assert "\n" not in cause and "BadRecord: cannot read record 'b'" in cause and "ReadRecords" in cause
    log = open(path).read()
    assert path == str(tmp_path / "logs" / "Transform.log") and logs.written == {"Transform": path}
    assert log.count("Traceback (most recent call last):") >= 2  # Beam's record and the step's error
    assert "in raise_on" in log and "Transform failed:" in log


def test_only_errors_with_a_traceback_during_a_step_leave_the_console(tmp_path, console):
    step = {"name": None}
    logger = logging.getLogger("some.library")
    with failures.StepLogs(str(tmp_path), lambda: step["name"]) as logs:
        logger.error("before any step\nTraceback (most recent call last):\n  ...")
        step["name"] = "Evaluator"
        logger.error("a plain error")
        logger.warning("a warning with one\nTraceback (most recent call last):\n  ...")
        try:
            raise KeyError("k")
        except KeyError:
            logger.exception("an error with its traceback")
    logger.exception("after the run")
    shown = console.getvalue()
    assert "before any step" in shown and "a plain error" in shown and "a warning with one" in shown
    assert "an error with its traceback" not in shown and "after the run" in shown
    assert "an error with its traceback" in open(logs.written["Evaluator"]).read()


def test_a_run_that_went_on_after_logged_errors_says_where_they_are(tmp_path, console, capsys):
    with failures.StepLogs(str(tmp_path), lambda: "StatisticsGen"):
        logging.getLogger("apache_beam").error("bundle retried\nTraceback (most recent call last):\n  ...")
    assert capsys.readouterr().err == (f"[pipeline] errors with tracebacks were logged while the run went on: "
                                       f"{tmp_path / 'StatisticsGen.log'}\n")
