"""What a run of the compiled spec did (kfp.local keeps no ML Metadata), as a RunResult: each
task's status, duration and output artifacts (a local `uri` and a `metadata` dict, as
kfp.local returns them), and the runtime parameters as the execution properties of the
components that take them."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from pipeline.config import tunables
from pipeline.results import run_outcome
from pipeline import steps
from components.run_page.record import Artifact, ComponentResult, RunResult

COMPILED_PROFILE = "compiled"


@dataclasses.dataclass
class TaskRecord:
    status: str  # "complete" or "failed"
    seconds: float
    start: float  # seconds after the run started
    outputs: dict[str, Any]


def from_task_outputs(pipeline_name: str, run_id: str, records: dict[str, TaskRecord], task_names: list[str],
                      parameters: Optional[dict[str, Any]] = None, wall_seconds: float = 0.0) -> RunResult:
    """`records` in the order the tasks ran; `task_names` every task of the spec (those
    without a record never ran)."""
    components = [ComponentResult(name, record.status, round(record.seconds, 2), round(record.start, 2))
                  for name, record in records.items()]
    components += [ComponentResult(name, "not run", 0.0) for name in sorted(set(task_names) - set(records))]
    artifacts = {}
    kept = steps.result_outputs()
    for task, record in records.items():
        for key, output in record.outputs.items():
            if (task, key) in kept:
                artifacts[(task, key)] = Artifact(output.uri, dict(getattr(output, "metadata", None) or {}))
    properties: dict[str, dict[str, Any]] = {}
    for name, value in (parameters or {}).items():
        if name in tunables.BY_NAME:
            properties.setdefault(tunables.BY_NAME[name].component, {})[name] = value
    result = RunResult(pipeline_name=pipeline_name, run_id=run_id, profile=COMPILED_PROFILE, components=components,
                       wall_seconds=round(wall_seconds, 2), artifacts=artifacts, execution_properties=properties)
    run_outcome.fill(result)
    return result
