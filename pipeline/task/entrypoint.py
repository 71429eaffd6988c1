"""The command every compiled task runs: TFX's container entrypoint, after the executor input
is put into the shape TFX reads.

    python -m pipeline.task.entrypoint <the arguments of TFX's kubeflow_v2_run_executor>

TFX's entrypoint (`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`) rebuilds
every input and output artifact from its `type` (`kubeflow_v2_entrypoint_utils._retrieve_class_path`:
an instance schema's YAML `title`, or a schema title, names the TFX class). Three runners hand it
the executor input (`--json_serialized_invocation_args`) in three shapes:

- Vertex AI: every artifact typed as the task declares it (TFX's instance schema). Passed on
  byte for byte, but for the RunPage step's outputs (below).
- Open-source KFP's backend (kubeflow/pipelines backend/src/v2, read at commit 7b70c7b), which
  TFX fails on (tensorflow/tfx#7768). Each rule below answers one of its files:
  * `metadata/client.go`, `GetOutputArtifactsByExecutionId`: an upstream output is read back
    from ML Metadata with `Schema: ""` ("TODO(Bobgy): figure out how to get schema"), and
    `OutputArtifact.ToRuntimeArtifact` turns that into `type: {instanceSchema: ""}`; TFX runs
    `yaml.safe_load("").get(...)` on it (AttributeError). Rule: an input whose type is empty or
    generic gets the type the task declares in `--json_serialized_inputs_spec_args`
    (`artifacts.<name>.artifactType`).
  * `metadata/converter.go`, `toRuntimeArtifact`: the artifact's `name` is its MLMD id ("12")
    and its `metadata` holds every MLMD property and custom property. TFX hashes any name into
    an id and keeps it for the executor output (`_get_hashed_id`), and turns metadata it has no
    property for into custom properties, so neither chokes it. What does not come back as it
    was stored: `StructValueToMLMDValue` (same file) stores a list value as the struct
    `{"list": [...]}` and a struct value as `{"struct": {...}}`, and `toRuntimeArtifact` hands
    the wrapper back (TFX's ExampleValidator writes `blessed` on its anomalies as a struct).
    Rule: on an artifact that came typeless, such wrappers are unwrapped.
  * `metadata/client.go`, `RecordArtifact`: adds the custom properties `display_name` (the
    output's name) and `store_session_info` (JSON of the bucket's session) to every artifact
    it records, so they reach the consumer's metadata. TFX parses them without complaint, but
    they are KFP's bookkeeping, not the producer's: an executor that copies an input onto an
    output (TFX's `Artifact.copy_from`, e.g. the DataViewBinder executor) would hand the
    launcher the input's `display_name`, which `RecordArtifact` then keeps instead of the
    output's own. Rule: dropped from inputs that came typeless.
  * `driver/driver.go`, `provisionOutputs`: with `PUBLISH_LOGS=true` (default manifests since
    KFP 2.5) the driver adds an output `executor-logs` of type `schemaTitle: system.Artifact`,
    which the launcher itself writes (`component/launcher_v2.go`, `getLogWriter`) and records
    (`uploadOutputArtifacts`, which also never merges an executor's `executor-logs` entry). TFX
    would import a class named `system.Artifact`. Rule: outputs the component does not declare
    are not handed to TFX (see below how they are told apart).
- kfp.local (kfp/local/executor_input_utils.py, `dsl_artifact_to_artifact_list`): inputs are
  upstream outputs typed `schemaTitle: system.Artifact`, named and with metadata as TFX wrote
  them. The first rule gives them the declared type.

Which outputs the component declares. TFX's compiled command carries no outputs spec (only
`--executor_class_path`, the executor input, the inputs spec and Beam arguments), and the
executor class does not name its component (our own components reuse and subclass executors),
so the component's declaration is not reachable from the command. What every runner does do is
type each declared output as the component's output definition types it: the backend copies
`artifactType` from the task's outputs spec (`driver.go`, `provisionOutputs`), kfp.local from
the component spec's output definitions (`construct_executor_input`), Vertex AI as declared; and
TFX's compiler gives every TFX output a TFX instance schema. So an output is declared exactly
when its type names a TFX type or one of the KFP types the RunPage step declares; an output
typed generically (another `system.*`, empty, missing) was added by the runner, and TFX could
not rebuild it anyway. This rule needs neither the name `executor-logs` nor a map from
executors to components, and holds for whatever the launcher adds next. Every dropped output
is logged.

"Generic" throughout: no type, an instance schema whose YAML has no `title`, or a title in
KFP's `system.` namespace (the types kfp.local and the backend's `executor-logs` use) other
than the RunPage step's own.

The RunPage step's outputs are typed as KFP's UI renders them (`system.HTML`, `system.Metrics`,
`system.ClassificationMetrics`, `system.Markdown`: components/run_page/artifacts.py); TFX would
take such a title for a class path and fail to import `system`. Rule: those outputs are handed
to TFX typed by their class path, which TFX imports. The launcher records each output under
the type of its own executor input, which this process does not change.

After TFX's runner: it tags every output with a `tfx_version` custom property
(`outputs_utils.tag_output_artifacts_with_version`), which KFP's scalar-metrics viewer would
list as a metric (`MetricsVisualizations.tsx`, `ScalarMetricsSection`: every custom property but
`display_name`). Rule: dropped from the executor output's `system.Metrics` artifacts.

Then TFX's runner takes over unchanged: its `main`, in this process, through absl's `app.run`
with TFX's own flag parser, so exit status, logging and the executor output file are TFX's.
"""

from __future__ import annotations

import sys
from typing import Optional

import yaml
from absl import logging
from google.protobuf import json_format, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.dsl.io import fileio

from components.run_page.artifacts import CLASS_PATHS

TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
EXECUTOR_INPUT_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
# metadata/client.go, RecordArtifact: KFP's bookkeeping on every artifact it records.
BACKEND_BOOKKEEPING = ("display_name", "store_session_info")
# metadata/converter.go, StructValueToMLMDValue: how a list or struct value is stored in MLMD.
BACKEND_WRAPPERS = {"list": "list_value", "struct": "struct_value"}
METRICS_TITLE = "system.Metrics"
TFX_VERSION_TAG = "tfx_version"


def type_title(type_schema: pipeline_spec_pb2.ArtifactTypeSchema) -> Optional[str]:
    """The title TFX reads a class from, or None where there is none."""
    kind = type_schema.WhichOneof("kind")
    if kind == "schema_title":
        return type_schema.schema_title or None
    if kind == "instance_schema":
        try:
            schema = yaml.safe_load(type_schema.instance_schema)
        except yaml.YAMLError:
            return None
        title = schema.get("title") if isinstance(schema, dict) else None
        return title if isinstance(title, str) and title else None
    return None


def is_generic(type_schema: pipeline_spec_pb2.ArtifactTypeSchema) -> bool:
    title = type_title(type_schema)
    return title is None or (title.startswith("system.") and title not in CLASS_PATHS)


def class_path_schema(title: str) -> pipeline_spec_pb2.ArtifactTypeSchema:
    """The type TFX's entrypoint reads a project class from: an instance schema titled with the
    class path (the shape TFX's compiler gives a custom type)."""
    return pipeline_spec_pb2.ArtifactTypeSchema(
        instance_schema=yaml.safe_dump({"title": CLASS_PATHS[title], "type": "object"}, sort_keys=False))


def _unwrapped(value: struct_pb2.Value) -> struct_pb2.Value:
    """A metadata value as it was before the backend wrapped it for MLMD."""
    if value.WhichOneof("kind") == "struct_value" and len(value.struct_value.fields) == 1:
        (key, inner), = value.struct_value.fields.items()
        if BACKEND_WRAPPERS.get(key) == inner.WhichOneof("kind"):
            return inner
    return value


def _retype(artifact: pipeline_spec_pb2.RuntimeArtifact, declared: pipeline_spec_pb2.ArtifactTypeSchema) -> None:
    came_typeless = type_title(artifact.type) is None
    artifact.type.CopyFrom(declared)
    if not came_typeless:  # kfp.local's system.Artifact: metadata as TFX wrote it
        return
    fields = artifact.metadata.fields
    for key in BACKEND_BOOKKEEPING:
        fields.pop(key, None)
    for key in list(fields):
        fields[key].CopyFrom(_unwrapped(fields[key]))


def repair(executor_input: pipeline_spec_pb2.ExecutorInput,
           inputs_spec: Optional[pipeline_spec_pb2.ComponentInputsSpec]) -> list[str]:
    """Types generic inputs as declared, drops generic outputs; returns what it changed."""
    changes = []
    declared = inputs_spec.artifacts if inputs_spec is not None else {}
    for name, artifact_list in executor_input.inputs.artifacts.items():
        if name not in declared or is_generic(declared[name].artifact_type):
            continue
        for artifact in artifact_list.artifacts:
            if is_generic(artifact.type):
                _retype(artifact, declared[name].artifact_type)
                changes.append(f"input {name}: type {type_title(declared[name].artifact_type)} as declared")
    outputs = executor_input.outputs.artifacts
    for name in [name for name, artifact_list in outputs.items()
                 if artifact_list.artifacts and all(is_generic(artifact.type) for artifact in artifact_list.artifacts)]:
        del outputs[name]
        changes.append(f"output {name}: not declared by the component (a generic type), not handed to TFX")
    for name, artifact_list in outputs.items():
        for artifact in artifact_list.artifacts:
            title = type_title(artifact.type)
            if title in CLASS_PATHS:
                artifact.type.CopyFrom(class_path_schema(title))
                changes.append(f"output {name}: {title} handed to TFX as {CLASS_PATHS[title]}")
    return changes


def metrics_outputs(executor_input: pipeline_spec_pb2.ExecutorInput) -> list[str]:
    """The outputs the launcher records as `system.Metrics`."""
    return [name for name, artifact_list in executor_input.outputs.artifacts.items()
            if any(type_title(artifact.type) == METRICS_TITLE for artifact in artifact_list.artifacts)]


def metrics_plan(argv: list[str]) -> tuple[Optional[str], list[str]]:
    """The executor output file and the outputs the launcher records as `system.Metrics`, from
    the executor input as the runner handed it ((None, []) where it does not parse)."""
    _, raw_input = _flag_value(argv, EXECUTOR_INPUT_FLAG)
    executor_input = pipeline_spec_pb2.ExecutorInput()
    try:
        json_format.Parse(raw_input or "", executor_input, ignore_unknown_fields=True)
    except json_format.ParseError:
        return None, []
    return executor_input.outputs.output_file or None, metrics_outputs(executor_input)


def tidy_executor_output(path: Optional[str], metrics_names: list[str]) -> list[str]:
    """Drops TFX's `tfx_version` tag from the executor output's metrics artifacts; returns what
    it dropped."""
    if not path or not metrics_names or not fileio.exists(path):
        return []
    output = pipeline_spec_pb2.ExecutorOutput()
    with fileio.open(path, "r") as f:
        json_format.Parse(f.read(), output, ignore_unknown_fields=True)
    dropped = []
    for name in metrics_names:
        for artifact in output.artifacts[name].artifacts if name in output.artifacts else []:
            if TFX_VERSION_TAG in artifact.metadata.fields:
                del artifact.metadata.fields[TFX_VERSION_TAG]
                dropped.append(f"output {name}: {TFX_VERSION_TAG} dropped (not a metric)")
    if dropped:
        with fileio.open(path, "w") as f:
            f.write(json_format.MessageToJson(output))
    return dropped


def _flag_value(argv: list[str], flag: str) -> tuple[Optional[int], Optional[str]]:
    """Where `flag`'s value sits in argv (`--flag VALUE` or `--flag=VALUE`), and the value."""
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return index + 1, argv[index + 1]
        if arg.startswith(flag + "="):
            return index, arg[len(flag) + 1:]
    return None, None


def repaired_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """TFX's entrypoint arguments with the executor input repaired, and what was changed; the
    same arguments where nothing needed repair (Vertex AI's shape)."""
    at, raw_input = _flag_value(argv, EXECUTOR_INPUT_FLAG)
    if raw_input is None:
        return list(argv), []  # TFX's own parser reports the missing flag
    _, raw_spec = _flag_value(argv, INPUTS_SPEC_FLAG)
    executor_input, inputs_spec = pipeline_spec_pb2.ExecutorInput(), None
    try:
        json_format.Parse(raw_input, executor_input, ignore_unknown_fields=True)
        if raw_spec:
            inputs_spec = json_format.Parse(raw_spec, pipeline_spec_pb2.ComponentInputsSpec(),
                                            ignore_unknown_fields=True)
    except json_format.ParseError:
        return list(argv), []  # TFX parses them again and reports it
    changes = repair(executor_input, inputs_spec)
    if not changes:
        return list(argv), []
    repaired = json_format.MessageToJson(executor_input, indent=None)
    argv = list(argv)
    argv[at] = repaired if argv[at] == raw_input else f"{EXECUTOR_INPUT_FLAG}={repaired}"
    return argv, changes


def main(argv: Optional[list[str]] = None) -> None:
    """Repairs the arguments, then runs TFX's entrypoint as its own `__main__` does."""
    import importlib

    from absl import app

    argv = list(sys.argv if argv is None else argv)
    args, changes = repaired_argv(argv[1:])
    output_file, metrics_names = metrics_plan(argv[1:])
    tfx_entrypoint = importlib.import_module(TFX_ENTRYPOINT)

    def run(parsed_argv):
        logging.set_verbosity(logging.INFO)
        for change in changes:
            logging.info("task entrypoint: %s", change)
        tfx_entrypoint.main(parsed_argv)
        for change in tidy_executor_output(output_file, metrics_names):
            logging.info("task entrypoint: %s", change)

    app.run(run, argv=[argv[0], *args], flags_parser=tfx_entrypoint._parse_flags)


if __name__ == "__main__":
    main()
