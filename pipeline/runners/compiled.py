"""Runs a compiled pipeline spec on this machine with Kubeflow Pipelines' own local orchestrator.

`kfp.local` walks the compiled DAG as a KFP backend does: task order, placeholder
substitution (`{{$}}`, the executor input), runtime parameters, executor outputs and artifact
passing between tasks. What it lacks is a way to run a container task without a Docker
engine: its SubprocessRunner refuses container components. `ContainerTaskAsSubprocess` runs
each container's command and arguments, unchanged, as a subprocess of this environment, which
holds what the image holds (the Dockerfile installs this project and pyproject's pins): the
command a cluster runs, our task entrypoint (pipeline/task/entrypoint.py), which takes
kfp.local's executor input as it takes the backend's.

With `--in-image IMAGE` (`run_compiled(..., in_image=IMAGE)`) every container task runs as a
container of IMAGE instead, through the Docker API (pipeline/containers/: the engine, and the
tasks' containers with their mounts and user).

A spec compiled with GPUs (`--set trainer.gpus=N --gpu-image IMAGE`) runs too: kfp.local
ignores a task's accelerator request and, with `--in-image`, every task runs in IMAGE, so the
Trainer trains on this machine's CPU; the run says so before it starts (`accelerator_notes`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any, Iterator, Optional

import yaml
from google.protobuf import json_format
from kfp import local
from kfp.local import pipeline_orchestrator, status, subprocess_task_handler, task_dispatcher
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.config import rules
from pipeline.config.settings import ConfigError, load_profile
from pipeline.containers.image_run import ImageRun, prepare_image_run
from pipeline.results import task_outputs
from components.run_page.record import RunResult
from pipeline.results.task_outputs import TaskRecord
from pipeline.runners import lock, progress

_PYTHON_NAMES = ("python", "python3")
_KFP_TYPES = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "STRING": str, "BOOLEAN": bool}


def load_spec(path: str):
    """The PipelineSpec proto of a compiled `.yaml` (or the `pipelineSpec` of a `.json` PipelineJob)."""
    if not os.path.isfile(path):
        raise ConfigError(f"compiled pipeline '{path}' does not exist; write one with `python -m pipeline "
                          "compile-kubeflow --local --output FILE.yaml`")
    with open(path) as f:
        document = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    document = document.get("pipelineSpec", document)
    try:
        return json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as error:
        raise ConfigError(f"'{path}' is not a compiled pipeline spec ({error})") from None


def arguments(spec, assignments: list[str]) -> dict[str, Any]:
    """The runtime parameters' defaults from the spec, with `NAME=VALUE` assignments typed by it."""
    declared = spec.root.input_definitions.parameters
    values = {}
    for name, parameter in declared.items():
        if parameter.HasField("default_value"):
            values[name] = json_format.MessageToDict(parameter.default_value)
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or name not in declared:
            raise ConfigError(f"--param '{assignment}': expected NAME=VALUE with NAME one of "
                              f"{', '.join(sorted(declared))}")
        kind = _KFP_TYPES.get(pipeline_parameter_type(declared[name]), str)
        try:
            values[name] = (raw.lower() in ("1", "true", "yes")) if kind is bool else kind(raw)
        except ValueError:
            raise ConfigError(f"--param {name}={raw}: expected {kind.__name__}") from None
    for name, parameter in declared.items():
        kind = _KFP_TYPES.get(pipeline_parameter_type(parameter))
        if kind is int and isinstance(values.get(name), float):
            values[name] = int(values[name])
    return values


def pipeline_parameter_type(parameter) -> str:
    return pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name(parameter.parameter_type)


def accelerator_notes(spec, in_image: Optional[str]) -> list[str]:
    """One line per container task of the spec that asks for accelerators: what it asks for and
    where this run runs it instead (kfp.local has no accelerators to give)."""
    where = f"in a container of {in_image}" if in_image else "as a subprocess here"
    notes = []
    for label, executor in sorted(spec.deployment_spec.fields["executors"].struct_value.fields.items()):
        container = json_format.MessageToDict(executor.struct_value).get("container", {})
        accelerator = container.get("resources", {}).get("accelerator")
        if accelerator:
            kind = accelerator.get("resourceType") or accelerator.get("type")
            count = accelerator.get("resourceCount") or accelerator.get("count")
            notes.append(f"{label.removesuffix('_executor')} asks for {count} {kind} in image {container.get('image')}; "
                         f"kfp.local has no accelerators to give, so it runs {where}, on the CPU")
    return notes


class ContainerTaskAsSubprocess:
    """kfp.local task handler: a container task's command and arguments, run as a subprocess here.

    The command's `python` is this environment's interpreter; the environment variables are
    the container's on top of this process's.
    """

    def __init__(self, image: str, full_command: list[str], pipeline_root: str, runner: Any,
                 env_vars: Optional[dict[str, str]] = None) -> None:
        self.image = image
        self.full_command = list(full_command)
        self.pipeline_root = pipeline_root
        self.env_vars = env_vars or {}

    def run(self):
        command = list(self.full_command)
        if command and command[0] in _PYTHON_NAMES:
            command[0] = sys.executable
        result = subprocess.run(command, env={**os.environ, **self.env_vars})
        return status.Status.SUCCESS if result.returncode == 0 else status.Status.FAILURE


@contextlib.contextmanager
def _recording_tasks(records: dict[str, TaskRecord]) -> Iterator[None]:
    """Times every task kfp.local dispatches, prints its progress like `run`, keeps its outputs."""
    original = task_dispatcher.run_single_task_implementation
    run_started = time.monotonic()

    def run_and_record(*args, **kwargs):
        name = _task_name(kwargs.get("component_name", args[1] if len(args) > 1 else "task"))
        print(progress.started_line(name), flush=True)
        started = time.monotonic()
        outputs, task_status = original(*args, **kwargs)
        seconds = time.monotonic() - started
        succeeded = task_status.name == "SUCCESS"
        records[name] = TaskRecord("complete" if succeeded else "failed", seconds, started - run_started, outputs)
        print(progress.ended_line(name, succeeded, seconds), flush=True)
        return outputs, task_status

    task_dispatcher.run_single_task_implementation = run_and_record
    try:
        yield
    finally:
        task_dispatcher.run_single_task_implementation = original


@contextlib.contextmanager
def _container_tasks_as_subprocesses() -> Iterator[None]:
    """kfp.local picks its SubprocessRunner's task handler by module attribute at dispatch time."""
    original = subprocess_task_handler.SubprocessTaskHandler
    subprocess_task_handler.SubprocessTaskHandler = ContainerTaskAsSubprocess
    try:
        yield
    finally:
        subprocess_task_handler.SubprocessTaskHandler = original


def _task_name(component_name: str) -> str:
    return component_name[len("comp-"):] if component_name.startswith("comp-") else component_name


def run_compiled(spec_path: str, assignments: list[str], pipeline_root: str,
                 in_image: Optional[str] = None) -> RunResult:
    """Runs the compiled spec with kfp.local under the root's lock; returns its record, the
    same as a local run's. `in_image`: every container task runs as a container of that image."""
    spec = load_spec(spec_path)
    values = arguments(spec, assignments)
    rules.check_runtime_parameters(values, load_profile("full"))
    image_run = prepare_image_run(in_image, spec, os.path.abspath(pipeline_root)) if in_image else None
    try:
        with lock.hold(os.path.abspath(pipeline_root)):
            return _run_with_kfp_local(spec, values, pipeline_root, image_run)
    finally:
        if image_run:
            image_run.client.close()


def _run_with_kfp_local(spec, values: dict[str, Any], pipeline_root: str,
                        image_run: Optional[ImageRun] = None) -> RunResult:
    if image_run:
        runner = local.DockerRunner()
        image_run.hand_over_writable_roots()
        how = (f"every task in a container of {image_run.image} (uid {image_run.user or 'root'}, "
               f"{image_run.docker_host})")
        handler = image_run.task_handlers()
    else:
        runner = local.SubprocessRunner(use_venv=False)
        how = "container tasks as subprocesses"
        handler = _container_tasks_as_subprocesses()
    os.makedirs(pipeline_root, exist_ok=True)
    local.init(runner=runner, pipeline_root=os.path.abspath(pipeline_root), raise_on_error=False)
    print(f"[pipeline] {spec.pipeline_info.name}: kfp.local with {how}, root {pipeline_root}, "
          f"parameters {json.dumps(values, sort_keys=True)}", flush=True)
    for note in accelerator_notes(spec, image_run.image if image_run else None):
        print(f"[pipeline] {note}", flush=True)
    records: dict[str, TaskRecord] = {}
    started = time.monotonic()
    # kfp.local names every run of a spec alike; the run's id adds its local start time.
    run_id = f"{spec.pipeline_info.name}-{time.strftime('%Y%m%dT%H%M%S')}"
    with handler, _recording_tasks(records):
        pipeline_orchestrator.run_local_pipeline(pipeline_spec=spec, arguments=values)
    return task_outputs.from_task_outputs(spec.pipeline_info.name, run_id, records, list(spec.root.dag.tasks),
                                          parameters=values, wall_seconds=time.monotonic() - started)
