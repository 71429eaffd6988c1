"""beam_runner=portable without a pipeline run: its settings and Beam arguments, the local job
service and worker pool (`pipeline.beam.services`, `python -m pipeline beam-services`),
the pre-flight check of both addresses, and a small Beam pipeline through them.
tests/beam_portable_e2e_test.py runs the demo on them."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import apache_beam as beam
import psutil
import pytest
from apache_beam.portability.api import beam_fn_api_pb2, endpoints_pb2
from apache_beam.runners.portability import portable_runner

from pipeline.beam import services as beam_services
from pipeline.beam.arguments import beam_args, portable_beam_args
from pipeline.cli import exit_status
from pipeline.config import rules as config_rules
from pipeline.config.settings import DEFAULT_IMAGE, ConfigError, apply_overrides, load_profile
from pipeline.runners import local, preflight

JOB, POOL = "127.0.0.1:8099", "127.0.0.1:50000"
PORTABLE = ("beam_runner=portable", f"beam_job_endpoint={JOB}", f"beam_worker_pool={POOL}")


def portable(*more):
    return apply_overrides(load_profile("demo"), [*PORTABLE, *more])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pids):
    """Every live process under `pids` (zombies included: psutil lists them)."""
    found = []
    for pid in pids:
        try:
            found += psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    return found


def test_portable_runs_every_beam_step_through_the_job_service_and_external_workers():
    args = beam_args(portable(), ["--job_name=x"])
    assert args[:5] == ["--runner=PortableRunner", f"--job_endpoint={JOB}", "--environment_type=EXTERNAL",
                        f"--environment_config={POOL}", "--experiments=disable_logging_submission_environment"]
    # The SDK image flag keeps TFX from packing its installation for each step; external workers ignore it.
    assert f"--sdk_container_image={DEFAULT_IMAGE}" in args and args[-1] == "--job_name=x"
    assert not [arg for arg in args if arg.startswith("--direct_")]


def test_in_process_stays_the_default():
    assert load_profile("demo").beam_runner == "in_process" and load_profile("full").beam_runner == "in_process"
    assert beam_args(load_profile("demo"))[0] == "--runner=FnApiRunner"


@pytest.mark.parametrize("assignments, message", [
    ((), "beam_job_endpoint=none: must be the HOST:PORT of a Beam job service with beam_runner=portable"),
    ((f"beam_job_endpoint={JOB}",), "beam_worker_pool=none: must be the HOST:PORT of a Beam worker pool"),
    ((f"beam_job_endpoint=grpc://{JOB}", f"beam_worker_pool={POOL}"), f"beam_job_endpoint=grpc://{JOB}: must be"),
    ((f"beam_job_endpoint={JOB}", "beam_worker_pool=localhost:99999"), "beam_worker_pool=localhost:99999: must be"),
    ((*PORTABLE[1:], "beam_running_mode=multi_processing"),
     "beam_running_mode=multi_processing: applies to beam_runner=in_process only"),
    ((*PORTABLE[1:], "beam_workers=4"), "beam_workers=4: applies to beam_runner=in_process only"),
])
def test_bad_portable_combinations_are_named_with_the_fix(assignments, message):
    config = apply_overrides(load_profile("demo"), ["beam_runner=portable", *assignments])
    with pytest.raises(ConfigError) as raised:
        config_rules.check(config)
    assert message in str(raised.value)
    assert "e.g. --set " in str(raised.value)


def test_a_runner_passed_with_beam_arg_conflicts_with_the_portable_setting():
    with pytest.raises(ConfigError, match=re.escape("--beam-arg=--runner=FlinkRunner: beam_runner=portable sets")):
        preflight.check_beam_args(portable(), ["--runner=FlinkRunner"])
    preflight.check_beam_args(portable(), ["--job_name=x"])
    preflight.check_beam_args(load_profile("demo"), ["--runner=FlinkRunner"])  # the pass-through stays


def test_compile_kubeflow_refuses_the_portable_setting(tmp_path, capsys):
    from pipeline.cli import main as cli

    status = cli.main(["compile-kubeflow", "--local", "--profile", "demo", "--output", str(tmp_path / "x.yaml"),
                       *[word for setting in PORTABLE for word in ("--set", setting)]])
    assert status == exit_status.USAGE
    assert "beam_runner=portable: applies to `run` only" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    with beam_services.running(log_dir=str(tmp_path_factory.mktemp("beam-services"))) as running:
        yield running
        processes = [psutil.Process(pid) for pid in running.pids()] + descendants(running.pids())
    assert not [process for process in processes if process.is_running()], "the services left processes behind"


def test_the_services_answer_where_they_say_and_only_as_themselves(services):
    assert re.fullmatch(r"127\.0\.0\.1:\d+", services.job_endpoint)
    assert beam_services.probe_job_service(services.job_endpoint) is None
    assert beam_services.probe_worker_pool(services.worker_pool) is None
    # The two addresses swapped: each answers, but not as the service asked for.
    assert "answers but is not a Beam job service" in beam_services.probe_job_service(services.worker_pool)
    assert "answers but is not a Beam worker pool" in beam_services.probe_worker_pool(services.job_endpoint)


def test_a_beam_pipeline_runs_on_an_sdk_worker_process_that_is_gone_afterwards(services, tmp_path):
    """The job service hands the work to a worker the pool starts in another process, at an
    address that resolves (not socket.getfqdn()); the pool waits for it, leaving no zombie."""
    out = tmp_path / "pids"
    with beam.Pipeline(argv=portable_beam_args(services.job_endpoint, services.worker_pool)) as pipeline:
        _ = (pipeline | beam.Create(["a", "b", "c"]) | beam.Map(lambda x: f"{x} {os.getpid()}")
             | beam.io.WriteToText(str(out), shard_name_template=""))
    assert isinstance(pipeline.runner, portable_runner.PortableRunner)
    lines = out.read_text().split()
    assert sorted(lines[0::2]) == ["a", "b", "c"]
    worker_pids = {int(pid) for pid in lines[1::2]}
    assert os.getpid() not in worker_pids and not set(services.pids()) & worker_pids
    deadline = time.monotonic() + 10
    while descendants(services.pids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert descendants(services.pids()) == [], "a worker outlived its job (or was left a zombie)"


def test_the_pool_refuses_a_worker_that_cannot_reach_the_job_service_naming_the_address(tmp_path):
    pool = beam_services.WorkerPool(str(tmp_path / "workers.log"))
    unreachable = f"127.0.0.1:{free_port()}"
    request = beam_fn_api_pb2.StartWorkerRequest(
        worker_id="w1", control_endpoint=endpoints_pb2.ApiServiceDescriptor(url=unreachable))
    started = time.monotonic()
    response = pool.StartWorker(request, None)
    assert time.monotonic() - started < beam_services.CONTROL_REACH_SECONDS + 3
    assert f"cannot reach the job service's control endpoint {unreachable}" in response.error
    assert pool.workers == {}


def test_a_run_whose_worker_pool_does_not_answer_stops_in_seconds_with_one_line(services, tmp_path):
    """A real `python -m pipeline run` process, its job service up and its worker pool address
    dead: the pre-flight check names the address and the setting; nothing runs."""
    dead = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--profile", "demo", "--pipeline-root", str(tmp_path / "root"),
         "--serving-dir", str(tmp_path / "serving"), "--set", "beam_runner=portable",
         "--set", f"beam_job_endpoint={services.job_endpoint}", "--set", f"beam_worker_pool={dead}"],
        capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == exit_status.USAGE, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: beam_worker_pool={dead}: nothing answers at {dead} within "
                      f"{beam_services.PROBE_SECONDS} s; start a local worker pool with `python -m pipeline "
                      f"beam-services` and use the --set lines it prints, or correct --set beam_worker_pool=HOST:PORT"]
    assert "Traceback" not in result.stderr + result.stdout
    assert "started" not in result.stdout and not (tmp_path / "root" / "TfdsExampleGen").exists()


def test_beam_services_command_prints_the_settings_and_stops_everything_on_ctrl_c(tmp_path):
    command = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "beam-services", "--job-port", "0", "--worker-port", "0",
         "--log-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [command.stdout.readline() for _ in range(4)]
        settings_line = lines[2].split()
        assert settings_line[0::2] == ["--set"] * 3, lines
        values = dict(setting.split("=", 1) for setting in settings_line[1::2])
        assert values["beam_runner"] == "portable"
        assert beam_services.probe_job_service(values["beam_job_endpoint"]) is None
        assert beam_services.probe_worker_pool(values["beam_worker_pool"]) is None
        children = descendants([command.pid])
        assert len(children) == 2
        config_rules.check(apply_overrides(load_profile("demo"), settings_line[1::2]))
        command.send_signal(signal.SIGINT)
        stdout, stderr = command.communicate(timeout=30)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    assert command.returncode == exit_status.SERVICES_STOPPED, stderr[-2000:]
    assert "stopped the job service, the worker pool and their workers" in stdout
    assert "Traceback" not in stderr
    assert not [child for child in children if child.is_running()]


def test_beam_services_command_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "pipeline", "beam-services", "--job-port", str(port),
                                 "--worker-port", "0", "--log-dir", str(tmp_path)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == exit_status.USAGE
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"error: the job service's port 127.0.0.1:{port} is not free (Address already in use); pass another with "
        "--job-port PORT, or --job-port 0 for any free port"]


def test_a_failed_beam_job_is_reported_on_one_line_with_its_cause():
    """What PortableRunner raises when the job service reports the job failed: its message
    carries the job's traceback."""
    message = ("Pipeline job-1 failed in state FAILED: Error running pipeline.\n"
               "Traceback (most recent call last):\n  File \"x.py\", line 1, in run\n    start_worker()\n"
               "RuntimeError: Error starting worker: an SDK worker cannot reach the job service's control "
               "endpoint vm:41234 within 5 s: ...\n")
    failure = local.PipelineFailed("StatisticsGen", RuntimeError(message))
    assert str(failure) == ("StatisticsGen failed: RuntimeError: Pipeline job-1 failed in state FAILED: Error "
                            "running pipeline. RuntimeError: Error starting worker: an SDK worker cannot reach the "
                            "job service's control endpoint vm:41234 within 5 s: ...")
    assert str(local.PipelineFailed("Pusher", OSError("disk full"))) == "Pusher failed: OSError: disk full"
