"""A local run's record as a compiled run would give it, for comparing the two."""

import types

from components.run_page.record import RunResult
from pipeline.results.task_outputs import TaskRecord, from_task_outputs


def compiled_twin(local: RunResult, run_id: str, parameters: dict) -> RunResult:
    """The record kfp.local's outputs would give for the same tasks: each output artifact with
    its properties as task metadata, whose numbers KFP carries as floats."""
    records = {}
    for component in local.components:
        outputs = {key: types.SimpleNamespace(
                       uri=artifact.uri,
                       metadata={k: float(v) if isinstance(v, int) else v for k, v in artifact.properties.items()})
                   for (task, key), artifact in local.artifacts.items() if task == component.name}
        records[component.name] = TaskRecord(component.status, component.seconds, component.start or 0.0, outputs)
    return from_task_outputs(local.pipeline_name, run_id, records, [c.name for c in local.components],
                             parameters=parameters, wall_seconds=local.wall_seconds)
