"""What a local run did, read back from ML Metadata: its executions (states, times,
properties) and their outputs, as a RunResult."""

from __future__ import annotations

import os
from typing import Any, Optional

from ml_metadata import errors, metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.results import run_outcome
from pipeline import steps
from components.run_page.record import Artifact, ComponentResult, RunResult, plain_properties

_STATES = {
    metadata_store_pb2.Execution.COMPLETE: "complete",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.NEW: "new",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def pipeline_names(store: metadata_store.MetadataStore) -> list[str]:
    return [context.name for context in store.get_contexts_by_type("pipeline")]


def latest_run_id(store: metadata_store.MetadataStore, pipeline_name: str) -> Optional[str]:
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return None
    runs = [c for c in store.get_contexts_by_type("pipeline_run")
            if any(p.id == pipeline.id for p in store.get_parent_contexts_by_context(c.id))]
    if not runs:
        runs = store.get_contexts_by_type("pipeline_run")
    return max(runs, key=lambda c: (c.create_time_since_epoch, c.id)).name if runs else None


def run_executions(store: metadata_store.MetadataStore, run_id: str) -> dict[str, list[metadata_store_pb2.Execution]]:
    """Executions of one run, by component (node) id."""
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run is None:
        return {}
    run_execution_ids = {e.id for e in store.get_executions_by_context(run.id)}
    by_node: dict[str, list[metadata_store_pb2.Execution]] = {}
    for node in store.get_contexts_by_type("node"):
        node_id = node.name.split(".", 1)[-1]
        for execution in store.get_executions_by_context(node.id):
            if execution.id in run_execution_ids:
                by_node.setdefault(node_id, []).append(execution)
    return by_node


def _output_artifacts(store, execution_id: int) -> list[metadata_store_pb2.Artifact]:
    events = store.get_events_by_execution_ids([execution_id])
    ids = [e.artifact_id for e in events if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
    return store.get_artifacts_by_id(ids) if ids else []


def artifacts_of_type(store, executions, type_name: str) -> list[metadata_store_pb2.Artifact]:
    try:
        type_id = store.get_artifact_type(type_name).id
    except errors.NotFoundError:
        return []
    found = []
    for execution in executions:
        found += [a for a in _output_artifacts(store, execution.id) if a.type_id == type_id]
    return found


def producing_run(store, artifact_id: int) -> Optional[str]:
    """The run whose execution produced the artifact (the first one that wrote it and was not
    itself taken from the cache), by its pipeline_run context's name; None when unknown."""
    events = store.get_events_by_artifact_ids([artifact_id])
    ids = sorted({e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT})
    executions = [e for e in store.get_executions_by_id(ids) if e.last_known_state != metadata_store_pb2.Execution.CACHED]
    for execution in sorted(executions, key=lambda e: (e.create_time_since_epoch, e.id)):
        runs = [c for c in store.get_contexts_by_execution(execution.id)
                if c.type_id == store.get_context_type("pipeline_run").id]
        if runs:
            return runs[0].name
    return None


def metadata_path(pipeline_root: str) -> str:
    return os.path.join(os.path.abspath(pipeline_root), "metadata", "metadata.sqlite")


class NoRun(LookupError):
    """The pipeline root holds no (such) run; the message says what was looked for."""


def open_run_store(pipeline_root: str) -> metadata_store.MetadataStore:
    path = metadata_path(pipeline_root)
    if not os.path.exists(path):
        raise NoRun(f"no ML Metadata at {path}: no pipeline has run with the root {pipeline_root}")
    return open_store(path)


def from_metadata(pipeline_root: str, pipeline_name: str, profile: str, run_id: Optional[str] = None,
                  component_seconds: Optional[dict[str, float]] = None, order: Optional[list[str]] = None,
                  wall_seconds: Optional[float] = None) -> RunResult:
    """A run (default: the pipeline's latest) as ML Metadata recorded it. The runner's own
    measurements, when given, are the components' durations and the wall time (ML Metadata's
    otherwise); `order` names the pipeline's components, so that those that never ran are listed."""
    store = open_run_store(pipeline_root)
    run_id = run_id or latest_run_id(store, pipeline_name)
    if run_id is None:
        raise NoRun(f"no run of {pipeline_name} in {metadata_path(pipeline_root)}")
    executions = {node: found[-1] for node, found in run_executions(store, run_id).items()}
    if not executions:
        raise NoRun(f"no run {run_id} in {metadata_path(pipeline_root)}")
    artifacts = {}
    cached_from = {}
    for (node, key), type_name in steps.result_outputs().items():
        found = artifacts_of_type(store, [executions[node]], type_name) if node in executions else []
        if found:
            artifacts[(node, key)] = Artifact(found[-1].uri, properties_of(found[-1]))
            if executions[node].last_known_state == metadata_store_pb2.Execution.CACHED and node not in cached_from:
                origin = producing_run(store, found[-1].id)
                if origin:
                    cached_from[node] = origin
    result = RunResult(
        pipeline_name=pipeline_name, run_id=run_id, profile=profile,
        components=components_of(executions, component_seconds, order or list(executions)),
        wall_seconds=wall_seconds if wall_seconds is not None else wall_seconds_of(executions),
        artifacts=artifacts,
        execution_properties={node: properties_of(execution) for node, execution in executions.items()},
        cached_from=cached_from,
    )
    run_outcome.fill(result)
    return result


def components_of(executions: dict[str, metadata_store_pb2.Execution], measured: Optional[dict[str, float]],
                  names: list[str]) -> list[ComponentResult]:
    """Each component's state and duration, in the order they started (those that never ran last)."""
    first = min((e.create_time_since_epoch for e in executions.values()), default=0)
    never = float("inf")
    components = []
    for name in sorted(names, key=lambda n: executions[n].create_time_since_epoch if n in executions else never):
        execution = executions.get(name)
        if execution is None:
            components.append(ComponentResult(name, "not run", round((measured or {}).get(name, 0.0), 2)))
            continue
        if measured is not None:
            seconds = measured.get(name, 0.0)
        else:
            seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
        start = round((execution.create_time_since_epoch - first) / 1000, 2)
        components.append(ComponentResult(name, _STATES.get(execution.last_known_state, "unknown"), round(seconds, 2),
                                          start))
    return components


def wall_seconds_of(executions: dict[str, metadata_store_pb2.Execution]) -> float:
    """From the first execution's start to the last one's end, as ML Metadata recorded them."""
    first = min(e.create_time_since_epoch for e in executions.values())
    last = max(e.last_update_time_since_epoch for e in executions.values())
    return round((last - first) / 1000, 2)


def properties_of(execution_or_artifact) -> dict[str, Any]:
    """ML Metadata's custom properties as plain values."""
    return plain_properties(execution_or_artifact.custom_properties)


def pipeline_name_in(pipeline_root: str, wanted: Optional[str]) -> str:
    """The pipeline whose runs the root holds: `wanted` (a profile's pipeline), or the only one there."""
    names = pipeline_names(open_run_store(pipeline_root))
    if wanted in names or (wanted and not names):
        return wanted
    if not names:
        raise NoRun(f"no pipeline runs in {metadata_path(pipeline_root)}")
    if wanted:
        raise NoRun(f"{metadata_path(pipeline_root)} holds no run of {wanted}, only of {', '.join(names)}")
    if len(names) > 1:
        raise NoRun(f"{metadata_path(pipeline_root)} holds runs of {', '.join(names)}: pass --profile")
    return names[0]
