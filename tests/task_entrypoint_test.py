"""Our task entrypoint (pipeline/task/entrypoint.py) runs every task of the demo's
compiled Kubeflow spec with the executor input each runner really gives it.

The open-source KFP backend is the case that matters: every one of the 10 tasks runs, chained,
with the executor input built as kubeflow/pipelines' backend/src/v2 builds it (each rule cites
the Go file it copies: `Backend` below), and each reads its inputs and writes its outputs. The
last, RunPage, writes outputs typed as KFP's UI renders them (`system.HTML`, `system.Metrics`,
`system.ClassificationMetrics`, `system.Markdown`): they are checked as the backend records
them, against the metadata KFP's SDK writes for its own artifact classes.
Vertex AI's shape (declared types) and kfp.local's (`system.Artifact`) run ExampleValidator (two
inputs) on the chain's artifacts. TFX's own entrypoint fails on the backend's shape: that is
what the module fixes.

A task's process is what a launcher starts: `python -m pipeline.task.entrypoint` with the
compiled arguments, here with the checkout as cwd and the test's environment (`run_task`'s
subprocess path; TASK_ENTRYPOINT_FROM_SCRATCH=1 runs every task that way). By default each task
is forked instead from a zygote (tests/support/task_zygote.py) that imported our entrypoint and
TFX's (TensorFlow, Beam, TFT, TFMA with them) once: about 9 s of imports a task saves. Each task
is still a process of its own that runs the module as `python -m` does: its own argv, absl's
flags parsed by it alone, its own exit status, its stdout and stderr as its log. What differs
is only what the imports before the fork left behind: the modules already loaded, their
import-time output (in the zygote's log, not the task's), one string hash seed for every
task, the zygote's thread id on TensorFlow's C++ log lines, and the zygote's command line in
`ps` (task_zygote.py says why the fork is safe). No launcher forks a task from a warm process, and what the entrypoint repairs
(its arguments) and writes (the executor output) does not depend on how its process began; the
launchers' own way, each task's process started from scratch by the compiled command, is what
the compiled runs do (tests/compiled_run_test.py as kfp.local's subprocesses,
tests/image_run_test.py in containers of the image). The zygote starts before the spec is
compiled, so its imports overlap the compile; the tasks run once per module, two at a time
where the DAG allows.
"""

import concurrent.futures
import copy
import itertools
import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from components.run_page.artifacts import CLASS_PATHS
from components.run_page.kfp_outputs import DISPLAY_NAMES
from pipeline.task import entrypoint as task_entrypoint
from support import task_zygote as task_zygote_support

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = "pipeline.task.entrypoint"
TFX_ENTRYPOINT = task_entrypoint.TFX_ENTRYPOINT
TASKS = ["TfdsExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer",
         "Evaluator", "InfraValidator", "Pusher", "RunPage"]
# config/gcs.go, GCSProviderConfig.ProvideSessionInfo with no providers configured; the JSON
# metadata/client.go RecordArtifact stores as `store_session_info`.
STORE_SESSION_INFO = json.dumps({"Provider": "gs", "Params": {"fromEnv": "true"}}, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# The compiled spec and how a task's command is run.

@pytest.fixture(scope="module")
def compiled(tmp_path_factory, demo_inputs):
    """The demo's spec, compiled for this machine: one epoch, no fine-tuning."""
    base = tmp_path_factory.mktemp("task_entrypoint")
    output, root, serving = base / "pipeline.yaml", base / "root", base / "serving"
    finished = subprocess.run(
        [sys.executable, "-m", "pipeline", "compile-kubeflow", "--local", "--profile", "demo",
         "--output", str(output), "--pipeline-root", str(root), "--set", f"serving_dir={serving}",
         "--set", "trainer.phase1_epochs=1", "--set", "trainer.phase2_epochs=0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200, env=task_env(),
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return {"spec": yaml.safe_load(output.read_text()), "root": str(root), "serving": str(serving)}


def task_env():
    return {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


def component(spec, task):
    return spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]


def container(spec, task):
    return spec["deploymentSpec"]["executors"][component(spec, task)["executorLabel"]]["container"]


def parameter_values(spec, task):
    """The task's parameters as the driver resolves them: constants, and the root's defaults for
    the pipeline's runtime parameters (no run-time overrides here)."""
    root_parameters = spec["root"]["inputDefinitions"]["parameters"]
    values = {}
    for name, parameter in spec["root"]["dag"]["tasks"][task]["inputs"].get("parameters", {}).items():
        if "runtimeValue" in parameter:
            values[name] = parameter["runtimeValue"]["constant"]
        else:
            values[name] = root_parameters[parameter["componentInputParameter"]]["defaultValue"]
    return values


def run_task(spec, task, executor_input, zygote=None, module=OURS):
    """The task's container command with `{{$}}` replaced, as launcher_v2.go compileCmdAndArgs
    does, and `module` in place of the compiled one; run here, stdout and stderr together: as
    `python -m module` from scratch, or forked from `zygote` (see the module's docstring)."""
    command = container(spec, task)["command"]
    assert command[:2] == ["python", "-m"] and command[2] in (TFX_ENTRYPOINT, OURS), command
    executor_input_json = json.dumps(executor_input)
    args = [arg.replace("{{$}}", executor_input_json) for arg in container(spec, task)["args"]]
    started = time.monotonic()
    if zygote is None:
        finished = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=task_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        code, log = finished.returncode, finished.stdout
    else:
        code, log = zygote.run(module, args, task, timeout=900)
    return {"code": code, "log": log, "seconds": time.monotonic() - started,
            "input": executor_input, "task": task, "module": module}


def run_jobs(jobs, zygote=None, workers=2):
    """Runs `jobs` ({key: (upstream keys, start)}) as their dependencies allow, `workers` at a
    time, the open-source backend's first, each forked from `zygote` if given. `start(results)`
    returns {"run": run_task's arguments}; a `start.finish(run)` runs here once the run ends,
    before any dependent starts."""
    results, running = {}, {}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        while len(results) < len(jobs):
            ready = sorted((key for key, (upstream, _) in jobs.items()
                            if key not in results and key not in running.values()
                            and all(key in results and results[key]["code"] == 0 for key in upstream)),
                           key=lambda key: key[0] != "backend")
            for key in ready[:workers - len(running)]:
                arguments = jobs[key][1](results)
                running[pool.submit(run_task, *arguments["run"], zygote=zygote)] = key
            if not running:  # what is left waits on a failed run
                for key in set(jobs) - set(results):
                    results[key] = {"code": None, "log": "an upstream run failed", "input": None}
                break
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                results[key] = future.result()
                results[key]["output"] = read_executor_output(results[key]["input"]) if results[key]["code"] == 0 else None
                print(f"[task_entrypoint_test] {key}: exit {results[key]['code']} in {results[key]['seconds']:.1f} s",
                      flush=True)
                if hasattr(jobs[key][1], "finish"):
                    jobs[key][1].finish(results[key])
    return results


def read_executor_output(executor_input):
    path = executor_input["outputs"]["outputFile"]
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# The open-source backend (kubeflow/pipelines backend/src/v2), rule by rule.

class Backend:
    """What the backend's driver and launcher do around a task, for tasks run here in order."""

    def __init__(self, spec, pipeline_root):
        self.spec, self.pipeline_root = spec, pipeline_root
        self.mlmd = {}  # MLMD artifact id -> {"uri", "custom_properties"}
        self.outputs = {}  # (task, output key) -> MLMD artifact id
        self.ids = itertools.count(7)  # MLMD ids: any integers; the run's other artifacts come first

    def executor_input(self, task):
        tasks = self.spec["root"]["dag"]["tasks"]
        inputs = {}
        for name, source in tasks[task]["inputs"].get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            # driver/resolve.go resolveUpstreamArtifacts: the producer's outputs, read back from
            # MLMD by metadata/client.go GetOutputArtifactsByExecutionId, one artifact each.
            artifact_id = self.outputs[(producer["producerTask"], producer["outputArtifactKey"])]
            inputs[name] = {"artifacts": [self.runtime_artifact(artifact_id)]}
        # driver/driver.go provisionOutputs: a task root under the pipeline root (task name and
        # a salt), each output under it named by its key and typed as the outputs spec declares.
        task_root = os.path.join(self.pipeline_root, task, "salt-1234")
        declared = dict(component(self.spec, task)["outputDefinitions"]["artifacts"])
        # driver/driver.go provisionOutputs with PUBLISH_LOGS=true (the default manifests since
        # KFP 2.5): one more output, `executor-logs`, typed system.Artifact.
        declared["executor-logs"] = {"artifactType": {"schemaTitle": "system.Artifact"}}
        outputs = {}
        for name, artifact_spec in declared.items():
            artifact = {"name": name, "uri": os.path.join(task_root, name), "type": artifact_spec["artifactType"]}
            if artifact_spec.get("metadata"):
                artifact["metadata"] = artifact_spec["metadata"]
            outputs[name] = {"artifacts": [artifact]}
        return {
            "inputs": {"artifacts": inputs, "parameterValues": parameter_values(self.spec, task)},
            # driver/driver.go provisionOutputs: the executor output file in the task root.
            "outputs": {"artifacts": outputs, "outputFile": os.path.join(task_root, "output_metadata.json")},
        }

    def runtime_artifact(self, artifact_id):
        """metadata/converter.go toRuntimeArtifact, then metadata/client.go
        OutputArtifact.ToRuntimeArtifact with the Schema GetOutputArtifactsByExecutionId left ""."""
        stored = self.mlmd[artifact_id]
        metadata = {}
        for key, (kind, value) in stored["custom_properties"].items():
            # toRuntimeArtifact: string -> string, double -> number, int -> number, struct as is.
            metadata[key] = float(value) if kind in ("int", "double") else value
        return {
            "name": str(artifact_id),  # toRuntimeArtifact: Name is the MLMD id
            "uri": stored["uri"],
            "metadata": metadata,
            "type": {"instanceSchema": ""},  # "TODO(Bobgy): figure out how to get schema"
        }

    def record_outputs(self, task, executor_input, executor_output, succeeded):
        """component/launcher_v2.go uploadOutputArtifacts: each output merged with the executor
        output's (mergeRuntimeArtifacts, never for executor-logs), recorded by metadata/client.go
        RecordArtifact; after a failure only executor-logs."""
        for name, artifact_list in executor_input["outputs"]["artifacts"].items():
            if not succeeded and name != "executor-logs":
                continue
            artifact = copy.deepcopy(artifact_list["artifacts"][0])
            written = ((executor_output or {}).get("artifacts", {}).get(name) or {}).get("artifacts")
            if written and name != "executor-logs":
                if written[0].get("uri"):
                    artifact["uri"] = written[0]["uri"]
                artifact.setdefault("metadata", {}).update(written[0].get("metadata", {}))
            # metadata/converter.go toMLMDArtifact: every metadata field a custom property.
            properties = {key: mlmd_value(value) for key, value in artifact.get("metadata", {}).items()
                          if key != "_kfp_workspace"}
            # RecordArtifact: display_name defaults to the output's name; store_session_info to
            # the bucket's session info as JSON.
            properties.setdefault("display_name", ("string", name))
            properties.setdefault("store_session_info", ("string", STORE_SESSION_INFO))
            artifact_id = next(self.ids)
            self.mlmd[artifact_id] = {"uri": artifact["uri"], "custom_properties": properties}
            self.outputs[(task, name)] = artifact_id


def mlmd_value(value):
    """metadata/converter.go StructValueToMLMDValue: string, number -> double, bool -> int, list
    and struct wrapped in a struct under "list" / "struct"; null is unsupported."""
    if isinstance(value, str):
        return "string", value
    if isinstance(value, bool):
        return "int", int(value)
    if isinstance(value, (int, float)):
        return "double", float(value)
    if isinstance(value, list):
        return "struct", {"list": value}
    if isinstance(value, dict):
        return "struct", {"struct": value}
    raise ValueError(f"unknown/unsupported value type {type(value)}")


# Outputs a task may leave empty: Transform's analyzer cache (written only when the analyzers
# are cached), the Pusher's pushed model (empty when the model is not blessed), and the RunPage's
# metrics (held in the artifact's metadata, nothing at its URI).
MAY_BE_EMPTY = {("Transform", "updated_analyzer_cache"), ("Pusher", "pushed_model"),
                ("RunPage", "metrics"), ("RunPage", "classification_metrics")}


def files_under(uri):
    return [os.path.join(folder, name) for folder, _, names in os.walk(uri) for name in names]


@pytest.fixture(scope="module")
def task_zygote(tmp_path_factory):
    """The zygote every task of `runs` is forked from (tests/support/task_zygote.py), its imports
    those of a task's process: our entrypoint and TFX's; None with TASK_ENTRYPOINT_FROM_SCRATCH=1."""
    if os.environ.get("TASK_ENTRYPOINT_FROM_SCRATCH") == "1":
        yield None
        return
    zygote = task_zygote_support.Zygote([OURS, TFX_ENTRYPOINT], cwd=REPO_ROOT, env=task_env(),
                                        log_dir=str(tmp_path_factory.mktemp("task_logs")))
    yield zygote
    zygote.close()


@pytest.fixture(scope="module")
def runs(task_zygote, compiled, tmp_path_factory):
    """Every task process of this file, run once, two at a time as their inputs allow: the 10 tasks
    as the open-source backend starts them, chained; ExampleValidator in Vertex AI's shape and
    in kfp.local's, on the chain's statistics and schema."""
    spec = compiled["spec"]
    backend = Backend(spec, compiled["root"])
    scratch = tmp_path_factory.mktemp("other_shapes")
    tasks = spec["root"]["dag"]["tasks"]

    def backend_job(task):
        def backend_start(results):
            return {"run": (spec, task, backend.executor_input(task))}

        def finish(run):
            logs = run["input"]["outputs"]["artifacts"]["executor-logs"]["artifacts"][0]["uri"]
            os.makedirs(os.path.dirname(logs), exist_ok=True)
            with open(logs, "w") as out:  # launcher_v2.go getLogWriter: the executor's output
                out.write(run["log"])
            backend.record_outputs(task, run["input"], run["output"], succeeded=run["code"] == 0)

        backend_start.finish = finish
        return {("backend", dependency) for dependency in tasks[task].get("dependentTasks", [])}, backend_start

    def shaped_job(shape, task, upstream):
        def start(results):
            view = {"spec": spec, "runs": {
                **{key[1]: run for key, run in results.items() if key[0] == "backend"},
                **{key[1]: run for key, run in results.items() if key[0] == shape}}}
            return {"run": (spec, task, executor_input_in_shape(view, task, shape, str(scratch / shape / task)))}
        return upstream, start

    statistics, schema = ("backend", "StatisticsGen"), ("backend", "SchemaGen")
    jobs = {("backend", task): backend_job(task) for task in TASKS}
    for shape in ("vertex", "kfp.local"):
        jobs[(shape, "ExampleValidator")] = shaped_job(shape, "ExampleValidator", {statistics, schema})
    return {"results": run_jobs(jobs, task_zygote), "backend": backend, **compiled}


@pytest.fixture(scope="module")
def backend_chain(runs):
    return {**runs, "runs": {key[1]: run for key, run in runs["results"].items() if key[0] == "backend"}}


@pytest.mark.parametrize("task", TASKS)
def test_every_task_runs_with_the_open_source_backends_executor_input(backend_chain, task):
    run = backend_chain["runs"][task]
    assert run["code"] == 0, run["log"][-4000:]
    spec, executor_input = backend_chain["spec"], run["input"]

    # The input artifacts came as the backend hands them, and TFX read each one (its log of
    # the executor's inputs names every input URI).
    for name, artifact_list in executor_input["inputs"]["artifacts"].items():
        given = artifact_list["artifacts"][0]
        assert given["type"] == {"instanceSchema": ""} and given["name"].isdigit()
        assert {"display_name", "store_session_info"} <= set(given["metadata"])
        assert given["uri"] in run["log"], name

    # Every declared output written under its URI and in the executor output; executor-logs left
    # to the launcher.
    declared = set(component(spec, task)["outputDefinitions"]["artifacts"])
    assert set(run["output"]["artifacts"]) == declared
    for name in declared:
        uri = executor_input["outputs"]["artifacts"][name]["artifacts"][0]["uri"]
        assert run["output"]["artifacts"][name]["artifacts"][0]["uri"] == uri
        if (task, name) not in MAY_BE_EMPTY:  # a folder, or one file (a ValueArtifact: the RunPage's page)
            assert os.path.isfile(uri) or files_under(uri), f"{task}: nothing written under {name} ({uri})"
    assert "executor-logs" in executor_input["outputs"]["artifacts"]


def test_chain_results_are_the_pipelines(backend_chain):
    """What the tasks wrote is what the pipeline means: statistics of the examples, a schema, a
    blessing judged on the trained model, pushed to the serving folder exactly when blessed."""
    runs = backend_chain["runs"]
    assert set(runs) == set(TASKS) and all(run["code"] == 0 for run in runs.values())

    def metadata(task, output):
        return runs[task]["output"]["artifacts"][output]["artifacts"][0]["metadata"]

    def uri(task, output):
        return runs[task]["input"]["outputs"]["artifacts"][output]["artifacts"][0]["uri"]

    assert json.loads(metadata("TfdsExampleGen", "examples")["split_names"]) == ["train", "eval", "test"]
    assert json.loads(metadata("StatisticsGen", "statistics")["split_names"]) == ["train", "eval", "test"]
    assert os.path.exists(os.path.join(uri("SchemaGen", "schema"), "schema.pbtxt"))
    blessed = os.path.exists(os.path.join(uri("Evaluator", "blessing"), "BLESSED"))
    assert blessed or os.path.exists(os.path.join(uri("Evaluator", "blessing"), "NOT_BLESSED"))
    # The blessing names the model by the name the backend gave it (its MLMD id), as TFX does
    # for Vertex's resource names (kubeflow_v2_entrypoint_utils.refactor_model_blessing).
    model_input = runs["Evaluator"]["input"]["inputs"]["artifacts"]["model"]["artifacts"][0]
    assert metadata("Evaluator", "blessing")["current_model_id"] == model_input["name"]
    # The InfraValidator ran the trained model in TF Serving's loader, and its blessing reached the Pusher.
    assert os.path.exists(os.path.join(uri("InfraValidator", "blessing"), "INFRA_BLESSED"))
    assert metadata("InfraValidator", "blessing")["blessed"] == 1.0
    pushed = metadata("Pusher", "pushed_model")
    assert pushed["pushed"] == (1.0 if blessed else 0.0)
    served = files_under(backend_chain["serving"])
    assert bool(served) == blessed and (not blessed or any(path.endswith("saved_model.pb") for path in served))


def test_nothing_of_the_backends_bookkeeping_reaches_the_outputs(backend_chain):
    """No output carries the backend's bookkeeping from an input; a display name only where
    the executor gives one (the RunPage's, for KFP's UI), which the backend then records."""
    for task, run in backend_chain["runs"].items():
        for name, artifact_list in run["output"]["artifacts"].items():
            metadata = artifact_list["artifacts"][0].get("metadata", {})
            assert "store_session_info" not in metadata, (task, name)
            if task == "RunPage":
                assert metadata["display_name"] == DISPLAY_NAMES[name]
                recorded = backend_chain["backend"].mlmd[backend_chain["backend"].outputs[(task, name)]]
                assert recorded["custom_properties"]["display_name"] == ("string", DISPLAY_NAMES[name])
            else:
                assert "display_name" not in metadata, (task, name)


def test_executor_logs_is_the_launchers(backend_chain):
    run = backend_chain["runs"]["TfdsExampleGen"]
    logs = run["input"]["outputs"]["artifacts"]["executor-logs"]["artifacts"][0]["uri"]
    with open(logs) as f:
        assert "output executor-logs: not declared by the component" in f.read()


# ---------------------------------------------------------------------------------------------
# The RunPage's outputs as the backend records them: what KFP's UI reads.

def run_page_output(backend_chain, name):
    """The RunPage's output `name` in the executor output TFX's entrypoint wrote (and ours tidied)."""
    return backend_chain["runs"]["RunPage"]["output"]["artifacts"][name]["artifacts"][0]


def chain_output_uri(backend_chain, task, name):
    return backend_chain["runs"][task]["input"]["outputs"]["artifacts"][name]["artifacts"][0]["uri"]


def evaluated_metrics(evaluation_uri):
    """The candidate's metrics as TFMA wrote them: {None (the whole split) or label: {name: value}}."""
    import tensorflow_model_analysis as tfma

    metrics = {}
    for record in tfma.load_metrics(evaluation_uri):
        keys = record.slice_key.single_slice_keys
        metrics[keys[0].int64_value if keys else None] = {
            kv.key.name: kv.value.double_value.value for kv in record.metric_keys_and_values
            if kv.value.HasField("double_value") and not kv.key.is_diff and kv.key.model_name != "baseline"}
    return metrics


def label_names(backend_chain):
    return json.loads(backend_chain["runs"]["TfdsExampleGen"]["output"]["artifacts"]["examples"]["artifacts"][0]
                      ["metadata"]["label_names"])


def test_run_pages_executor_output_names_each_output_for_kfps_ui(backend_chain):
    run = backend_chain["runs"]["RunPage"]
    assert set(run["output"]["artifacts"]) == {"page", "metrics", "classification_metrics", "verdict"}
    for name in run["output"]["artifacts"]:
        assert isinstance(run_page_output(backend_chain, name)["metadata"]["display_name"], str), name


def test_run_pages_metrics_are_the_evaluations_in_the_shape_kfps_sdk_logs_them(backend_chain):
    """Each metric a number, as `kfp.dsl.Metrics.log_metric` logs it: the Evaluator's (TFMA's)
    on the whole test split and per label, and the bar the run's Evaluator was given; no
    `tfx_version` (KFP's viewer would list it), which TFX's runner tags every output with."""
    import kfp.dsl

    from components.run_page.record import SUMMARY_METRICS

    metadata = run_page_output(backend_chain, "metrics")["metadata"]
    assert "tfx_version" not in metadata and "tfx_version" in run_page_output(backend_chain, "page")["metadata"]
    evaluated = evaluated_metrics(chain_output_uri(backend_chain, "Evaluator", "evaluation"))
    names = label_names(backend_chain)
    reference = kfp.dsl.Metrics(name="metrics", uri=chain_output_uri(backend_chain, "RunPage", "metrics"))
    for name in SUMMARY_METRICS:
        if name in evaluated[None]:
            reference.log_metric(name, evaluated[None][name])
    for label, name in enumerate(names):
        reference.log_metric(f"binary_accuracy ({name})", evaluated[label]["binary_accuracy"])
    accuracy_bar = backend_chain["spec"]["root"]["inputDefinitions"]["parameters"]["accuracy_bar"]["defaultValue"]
    reference.log_metric("accuracy_bar", accuracy_bar)
    assert {"binary_accuracy", "auc", "precision", "recall", "binary_accuracy (cat)", "accuracy_bar"} <= set(metadata)
    assert metadata == {**reference.metadata, "display_name": DISPLAY_NAMES["metrics"]}
    assert all(isinstance(value, float) for key, value in metadata.items() if key != "display_name")


def test_run_pages_confusion_matrix_and_roc_are_in_the_shape_kfps_sdk_logs_them(backend_chain):
    """`confusionMatrix` and `confidenceMetrics` as `kfp.dsl.ClassificationMetrics`'
    `log_confusion_matrix` and `log_roc_curve` write them, from the test split: the matrix's rows
    are TFMA's per-label counts, its diagonal TFMA's accuracy; the ROC curve runs from (0, 0) to
    (1, 1) as the threshold falls, a point per test example at most."""
    import kfp.dsl

    metadata = run_page_output(backend_chain, "classification_metrics")["metadata"]
    matrix = metadata["confusionMatrix"]
    assert set(matrix) == {"annotationSpecs", "rows"}
    rows = [row["row"] for row in matrix["rows"]]
    roc = metadata["confidenceMetrics"]
    assert isinstance(roc, list) and roc and all(
        isinstance(point, dict) and set(point) == {"confidenceThreshold", "recall", "falsePositiveRate"} for point in roc)
    thresholds, recall, fpr = ([point[key] for point in roc] for key in ("confidenceThreshold", "recall", "falsePositiveRate"))

    reference = kfp.dsl.ClassificationMetrics(name="classification_metrics",
                                              uri=chain_output_uri(backend_chain, "RunPage", "classification_metrics"))
    reference.log_confusion_matrix(label_names(backend_chain), rows)
    reference.log_roc_curve(fpr, recall, thresholds)
    assert ({key: metadata[key] for key in ("confusionMatrix", "confidenceMetrics", "display_name")}
            == {**reference.metadata, "display_name": DISPLAY_NAMES["classification_metrics"]})

    evaluated = evaluated_metrics(chain_output_uri(backend_chain, "Evaluator", "evaluation"))
    assert [sum(row) for row in rows] == [evaluated[label]["example_count"] for label in range(len(rows))]
    assert sum(rows[i][i] for i in range(len(rows))) / sum(map(sum, rows)) == pytest.approx(
        evaluated[None]["binary_accuracy"])
    assert thresholds == sorted(thresholds, reverse=True) and len(roc) <= evaluated[None]["example_count"] + 1
    assert recall == sorted(recall) and fpr == sorted(fpr)
    assert (fpr[0], recall[0]) == (0.0, 0.0) and (fpr[-1], recall[-1]) == (1.0, 1.0)


def test_run_pages_page_is_one_self_contained_file_and_its_verdict_the_evaluators(backend_chain):
    with open(chain_output_uri(backend_chain, "RunPage", "page")) as f:
        page = f.read()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    images = re.findall(r'<img src="([^"]*)"', page)
    assert images and all(source.startswith("data:image/") for source in images)
    # The verdict is the Evaluator's, and names the Pusher's push (both read from the inputs'
    # metadata, which TFX's entrypoint hands the executor as JSON values).
    blessed = os.path.exists(os.path.join(chain_output_uri(backend_chain, "Evaluator", "blessing"), "BLESSED"))
    with open(chain_output_uri(backend_chain, "RunPage", "verdict")) as f:
        verdict = f.read()
    assert verdict.startswith("# Blessed\n" if blessed else "# Not blessed\n")
    pushed = backend_chain["runs"]["Pusher"]["output"]["artifacts"]["pushed_model"]["artifacts"][0]["metadata"]
    destination = pushed.get("pushed_destination")
    assert bool(destination and f"`{destination}`" in verdict) == blessed


def test_run_page_task_logs_its_outputs_handed_to_tfx_by_class_and_tfx_version_dropped(backend_chain):
    log = backend_chain["runs"]["RunPage"]["log"]
    for name, definition in component(backend_chain["spec"], "RunPage")["outputDefinitions"]["artifacts"].items():
        title = yaml.safe_load(definition["artifactType"]["instanceSchema"])["title"]
        assert f"task entrypoint: output {name}: {title} handed to TFX as {CLASS_PATHS[title]}" in log
    assert "task entrypoint: output metrics: tfx_version dropped" in log
    assert "task entrypoint: output executor-logs: not declared by the component" in log


# ---------------------------------------------------------------------------------------------
# TFX's own entrypoint on the backend's shape: the failures the module fixes.

def rerooted(executor_input, root):
    """The executor input with its outputs moved under `root` (a run that must not touch the
    chain's outputs)."""
    executor_input = copy.deepcopy(executor_input)
    for name, artifact_list in executor_input["outputs"]["artifacts"].items():
        artifact_list["artifacts"][0]["uri"] = os.path.join(root, name)
    executor_input["outputs"]["outputFile"] = os.path.join(root, "output_metadata.json")
    return executor_input


@pytest.mark.parametrize("task, failure, message", [
    # An input typed `instanceSchema: ""` (tensorflow/tfx#7768): _retrieve_class_path runs
    # yaml.safe_load("").get(...).
    ("SchemaGen", AttributeError, "'NoneType' object has no attribute 'get'"),
    # The executor-logs output (ExampleGen has no inputs): TFX imports a class system.Artifact.
    ("TfdsExampleGen", ImportError, "Could not import system.Artifact"),
])
def test_tfx_entrypoint_fails_on_the_backends_executor_input(backend_chain, task, failure, message, tmp_path):
    """TFX's entrypoint, in this process (it fails before any executor starts)."""
    import importlib

    tfx_entrypoint = importlib.import_module(TFX_ENTRYPOINT)
    executor_input = rerooted(backend_chain["backend"].executor_input(task), str(tmp_path))
    if task == "SchemaGen":  # without executor-logs: the typeless input alone fails
        del executor_input["outputs"]["artifacts"]["executor-logs"]
    argv = [TFX_ENTRYPOINT, *argv_for(backend_chain["spec"], task, executor_input)]
    with pytest.raises(failure, match=message):
        tfx_entrypoint.main(tfx_entrypoint._parse_flags(argv))
    assert files_under(str(tmp_path)) == []


# ---------------------------------------------------------------------------------------------
# Vertex AI's shape and kfp.local's, on the chain's artifacts.

def declared_input(spec, task, name):
    return component(spec, task)["inputDefinitions"]["artifacts"][name]["artifactType"]


def executor_input_in_shape(backend_chain, task, shape, task_root):
    """The task's executor input as Vertex AI or kfp.local gives it, its inputs the chain's."""
    spec, runs = backend_chain["spec"], backend_chain["runs"]
    inputs = {}
    for index, (name, source) in enumerate(spec["root"]["dag"]["tasks"][task]["inputs"].get("artifacts", {}).items()):
        producer, key = source["taskOutputArtifact"]["producerTask"], source["taskOutputArtifact"]["outputArtifactKey"]
        written = runs[producer]["output"]["artifacts"][key]["artifacts"][0]
        if shape == "vertex":  # typed as declared, named by its Vertex ML Metadata resource
            artifact = {"name": f"projects/p/locations/l/metadataStores/default/artifacts/{100 + index}",
                        "type": declared_input(spec, task, name)}
        else:  # kfp/local/executor_input_utils.py dsl_artifact_to_artifact_list
            artifact = {"name": written["name"], "type": {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}}
        inputs[name] = {"artifacts": [{**artifact, "uri": written["uri"], "metadata": written["metadata"]}]}
    outputs = {  # both: each declared output typed as declared, named by its key
        name: {"artifacts": [{"name": name, "type": artifact_spec["artifactType"],
                              "uri": os.path.join(task_root, name), "metadata": {}}]}
        for name, artifact_spec in component(spec, task)["outputDefinitions"]["artifacts"].items()
    }
    output_file = "executor_output.json" if shape == "kfp.local" else "executor_output_metadata.json"
    return {"inputs": {"artifacts": inputs, "parameterValues": parameter_values(spec, task)},
            "outputs": {"artifacts": outputs, "outputFile": os.path.join(task_root, output_file)}}


@pytest.mark.parametrize("shape", ["vertex", "kfp.local"])
def test_example_validator_runs_with_vertex_and_kfp_local_executor_inputs(runs, shape):
    task = "ExampleValidator"
    run = runs["results"][(shape, task)]
    assert run["code"] == 0, run["log"][-4000:]
    given = run["input"]["inputs"]["artifacts"]
    typed = {name: artifact_list["artifacts"][0]["type"] for name, artifact_list in given.items()}
    if shape == "vertex":
        assert typed == {name: declared_input(runs["spec"], task, name) for name in given}
        assert "task entrypoint:" not in run["log"]  # nothing repaired
    else:
        assert list(typed.values()) == [{"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}] * 2
    for name, artifact_list in given.items():
        assert artifact_list["artifacts"][0]["uri"] in run["log"], name
    anomalies = run["input"]["outputs"]["artifacts"]["anomalies"]["artifacts"][0]["uri"]
    assert run["output"]["artifacts"]["anomalies"]["artifacts"][0]["uri"] == anomalies
    assert sorted(os.listdir(anomalies)) == ["Split-eval", "Split-test", "Split-train"]
    assert all(files_under(os.path.join(anomalies, split)) for split in os.listdir(anomalies))


# ---------------------------------------------------------------------------------------------
# The repair itself, without running anything.

def argv_for(spec, task, executor_input):
    return [arg.replace("{{$}}", json.dumps(executor_input)) for arg in container(spec, task)["args"]]


def repaired_input(argv):
    args, _ = task_entrypoint.repaired_argv(argv)
    return json.loads(args[args.index(task_entrypoint.EXECUTOR_INPUT_FLAG) + 1])


def as_tfx_wrote_them(spec):
    """Every task's outputs as TFX's entrypoint writes them in its executor output (URIs made
    up): named by their key, metadata from the artifact's properties."""
    runs = {}
    for task in TASKS:
        written = {name: {"artifacts": [{"name": name, "uri": f"/root/{task}/{name}",
                                         "metadata": {"split_names": '["train", "eval", "test"]', "span": 0.0,
                                                      "tfx_version": "1.17.0"}}]}
                   for name in component(spec, task)["outputDefinitions"]["artifacts"]}
        runs[task] = {"output": {"artifacts": written}}
    return {"spec": spec, "runs": runs}


def rebuilt_output_classes(outputs):
    """The class TFX's entrypoint rebuilds each output as (kubeflow_v2_entrypoint_utils)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint_utils

    parsed = json_format.ParseDict(outputs, pipeline_spec_pb2.ExecutorInput.Outputs())
    return {name: type(artifacts[0]) for name, artifacts in entrypoint_utils.parse_raw_artifact_dict(parsed.artifacts).items()}


def assert_outputs_reach_tfx_as_declared(task, given, repaired):
    """The outputs passed on as given, but the RunPage's (typed with KFP's `system.*` titles,
    which TFX would import as classes): typed by the path of the class the component declares,
    which TFX rebuilds them as; nothing else of theirs changed."""
    if task != "RunPage":
        assert repaired == given
        return
    from components.run_page.spec import RunPageSpec

    def untyped(outputs):
        return {**outputs, "artifacts": {name: [{k: v for k, v in artifact.items() if k != "type"}
                                                for artifact in artifact_list["artifacts"]]
                                         for name, artifact_list in outputs["artifacts"].items()}}

    assert untyped(repaired) == untyped(given)
    assert rebuilt_output_classes(repaired) == {name: channel.type for name, channel in RunPageSpec.OUTPUTS.items()}


@pytest.mark.parametrize("task", TASKS)
def test_vertex_shape_passes_through_untouched(compiled, task, tmp_path):
    """Byte for byte, but the RunPage's outputs (see assert_outputs_reach_tfx_as_declared)."""
    spec = compiled["spec"]
    given = executor_input_in_shape(as_tfx_wrote_them(spec), task, "vertex", str(tmp_path))
    argv = argv_for(spec, task, given)
    args, changes = task_entrypoint.repaired_argv(argv)
    if task != "RunPage":
        assert args == argv and changes == []
        return
    repaired = repaired_input(argv)
    assert repaired["inputs"] == given["inputs"] and len(changes) == len(given["outputs"]["artifacts"])
    assert_outputs_reach_tfx_as_declared(task, given["outputs"], repaired["outputs"])


@pytest.mark.parametrize("task", TASKS[1:])
def test_kfp_local_shape_is_typed_as_declared_and_keeps_its_metadata(compiled, task, tmp_path):
    spec = compiled["spec"]
    given = executor_input_in_shape(as_tfx_wrote_them(spec), task, "kfp.local", str(tmp_path))
    repaired = repaired_input(argv_for(spec, task, given))
    assert repaired["inputs"]["artifacts"] == {
        name: {"artifacts": [{**artifact_list["artifacts"][0], "type": declared_input(spec, task, name)}]}
        for name, artifact_list in given["inputs"]["artifacts"].items()
    }
    assert repaired["inputs"]["parameterValues"] == given["inputs"]["parameterValues"]
    assert_outputs_reach_tfx_as_declared(task, given["outputs"], repaired["outputs"])


def test_backend_shape_is_typed_as_declared_and_loses_executor_logs(backend_chain):
    spec, given = backend_chain["spec"], backend_chain["runs"]["Trainer"]["input"]
    repaired = repaired_input(argv_for(spec, "Trainer", given))
    for name, artifact_list in repaired["inputs"]["artifacts"].items():
        artifact, before = artifact_list["artifacts"][0], given["inputs"]["artifacts"][name]["artifacts"][0]
        assert artifact["type"] == declared_input(spec, "Trainer", name)
        assert (artifact["name"], artifact["uri"]) == (before["name"], before["uri"])
        assert artifact["metadata"] == {k: v for k, v in before["metadata"].items()
                                        if k not in ("display_name", "store_session_info")}
    assert set(repaired["outputs"]["artifacts"]) == set(component(spec, "Trainer")["outputDefinitions"]["artifacts"])
    assert repaired["outputs"]["artifacts"]["model"] == given["outputs"]["artifacts"]["model"]
    assert repaired["inputs"]["parameterValues"] == given["inputs"]["parameterValues"]


def test_every_artifact_reaches_tfx_as_its_producer_wrote_it(backend_chain):
    """Each output of the chain, read back as the backend hands it to a consumer and repaired,
    has the metadata TFX wrote, and TFX rebuilds the same artifact from it as from Vertex's
    shape (ExampleValidator's `blessed` is a struct, stored wrapped by converter.go)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint_utils

    def parsed(artifact):
        inputs = json_format.ParseDict({"artifacts": {"x": {"artifacts": [artifact]}}}, pipeline_spec_pb2.ExecutorInput.Inputs())
        rebuilt = entrypoint_utils.parse_raw_artifact_dict(inputs.artifacts)["x"][0]
        return rebuilt.type_name, rebuilt.uri, dict(rebuilt.mlmd_artifact.properties), dict(rebuilt.mlmd_artifact.custom_properties)

    backend, spec = backend_chain["backend"], backend_chain["spec"]
    checked = set()
    for (task, name), artifact_id in backend.outputs.items():
        if name == "executor-logs" or task == "RunPage":  # no task reads the RunPage's outputs
            continue
        declared = component(spec, task)["outputDefinitions"]["artifacts"][name]["artifactType"]
        written = backend_chain["runs"][task]["output"]["artifacts"][name]["artifacts"][0]
        given = backend.runtime_artifact(artifact_id)
        argv = [task_entrypoint.EXECUTOR_INPUT_FLAG, json.dumps({"inputs": {"artifacts": {"x": {"artifacts": [given]}}}}),
                task_entrypoint.INPUTS_SPEC_FLAG, json.dumps({"artifacts": {"x": {"artifactType": declared}}})]
        repaired = repaired_input(argv)["inputs"]["artifacts"]["x"]["artifacts"][0]
        assert repaired["metadata"] == written["metadata"], (task, name)
        assert parsed(repaired) == parsed({**written, "name": given["name"], "type": declared}), (task, name)
        checked.add((task, name))
    assert ("ExampleValidator", "anomalies") in checked and len(checked) == 13


def test_backend_wrapped_lists_and_structs_are_unwrapped():
    """metadata/converter.go stores a list as {"list": [...]} and a struct as {"struct": {...}}
    and hands the wrapper back; TFX would keep the wrapper as the value."""
    schema = "title: tfx.Examples\ntype: object\n"
    metadata = {"split_names": '["train"]', "span": 0.0, "tags": {"list": ["a", "b"]},
                "extra": {"struct": {"k": "v"}}, "plain": {"k": "v"}, "display_name": "examples",
                "store_session_info": STORE_SESSION_INFO}
    executor_input = {"inputs": {"artifacts": {"examples": {"artifacts": [
        {"name": "3", "uri": "/r/examples", "type": {"instanceSchema": ""}, "metadata": metadata}]}}}}
    argv = [task_entrypoint.EXECUTOR_INPUT_FLAG, json.dumps(executor_input),
            task_entrypoint.INPUTS_SPEC_FLAG, json.dumps({"artifacts": {"examples": {"artifactType": {"instanceSchema": schema}}}})]
    artifact = repaired_input(argv)["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert artifact["type"] == {"instanceSchema": schema}
    assert artifact["metadata"] == {"split_names": '["train"]', "span": 0.0, "tags": ["a", "b"],
                                    "extra": {"k": "v"}, "plain": {"k": "v"}}

    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint_utils
    from kfp.pipeline_spec import pipeline_spec_pb2
    from google.protobuf import json_format

    parsed = json_format.ParseDict(repaired_input(argv)["inputs"], pipeline_spec_pb2.ExecutorInput.Inputs())
    examples = entrypoint_utils.parse_raw_artifact_dict(parsed.artifacts)["examples"][0]
    assert examples.split_names == '["train"]' and examples.get_json_value_custom_property("tags") == ["a", "b"]


def test_flag_with_equals_sign_is_repaired_too():
    executor_input = {"outputs": {"artifacts": {"executor-logs": {"artifacts": [
        {"name": "executor-logs", "uri": "/r/logs", "type": {"schemaTitle": "system.Artifact"}}]}}}}
    args, changes = task_entrypoint.repaired_argv([f"{task_entrypoint.EXECUTOR_INPUT_FLAG}={json.dumps(executor_input)}", "--x"])
    assert args[1] == "--x" and len(changes) == 1
    assert json.loads(args[0].split("=", 1)[1]) == {"outputs": {}}


def test_run_page_types_are_handed_to_tfx_as_their_class_path_and_executor_logs_still_dropped():
    """Outputs typed with the RunPage's KFP titles (as a schema title or an instance schema's
    title) reach TFX typed by their class path, which TFX rebuilds them as; a TFX type passes as
    it was; the backend's executor-logs and any other `system.*` output are still dropped."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.types import standard_artifacts

    from components.run_page import artifacts

    model_type = {"instanceSchema": "title: tfx.Model\ntype: object\n"}
    types = {"page": {"schemaTitle": "system.HTML", "schemaVersion": "0.0.1"},
             "metrics": {"instanceSchema": "title: system.Metrics\ntype: object\n"},
             "classification_metrics": {"schemaTitle": "system.ClassificationMetrics"},
             "verdict": {"instanceSchema": "title: system.Markdown\ntype: object\n"},
             "model": model_type, "executor-logs": {"schemaTitle": "system.Artifact"},
             "dataset": {"schemaTitle": "system.Dataset"}}
    given = {"outputs": {"outputFile": "/r/output_metadata.json", "artifacts": {
        name: {"artifacts": [{"name": name, "uri": f"/r/{name}", "type": artifact_type, "metadata": {"k": "v"}}]}
        for name, artifact_type in types.items()}}}
    executor_input = json_format.ParseDict(given, pipeline_spec_pb2.ExecutorInput())
    changes = task_entrypoint.repair(executor_input, None)
    repaired = json_format.MessageToDict(executor_input)["outputs"]

    assert set(repaired["artifacts"]) == {"page", "metrics", "classification_metrics", "verdict", "model"}
    assert rebuilt_output_classes(repaired) == {
        "page": artifacts.HTML, "metrics": artifacts.Metrics, "classification_metrics": artifacts.ClassificationMetrics,
        "verdict": artifacts.Markdown, "model": standard_artifacts.Model}
    for name, artifact_list in repaired["artifacts"].items():
        artifact = artifact_list["artifacts"][0]
        assert {k: v for k, v in artifact.items() if k != "type"} == {"name": name, "uri": f"/r/{name}", "metadata": {"k": "v"}}
    assert repaired["artifacts"]["model"]["artifacts"][0]["type"] == model_type
    assert sorted(changes) == sorted([
        "output executor-logs: not declared by the component (a generic type), not handed to TFX",
        "output dataset: not declared by the component (a generic type), not handed to TFX",
        *(f"output {name}: system.{kind} handed to TFX as components.run_page.artifacts.{kind}" for name, kind in (
            ("page", "HTML"), ("metrics", "Metrics"), ("classification_metrics", "ClassificationMetrics"),
            ("verdict", "Markdown")))])


def test_metrics_plan_names_the_outputs_the_launcher_records_as_metrics():
    executor_input = {"outputs": {"outputFile": "/r/output_metadata.json", "artifacts": {
        "metrics": {"artifacts": [{"name": "metrics", "type": {"instanceSchema": "title: system.Metrics\ntype: object\n"}}]},
        "scores": {"artifacts": [{"name": "scores", "type": {"schemaTitle": "system.Metrics"}}]},
        "classification_metrics": {"artifacts": [{"name": "c", "type": {"schemaTitle": "system.ClassificationMetrics"}}]},
        "model": {"artifacts": [{"name": "model", "type": {"instanceSchema": "title: tfx.Model\ntype: object\n"}}]}}}}
    output_file, names = task_entrypoint.metrics_plan([task_entrypoint.EXECUTOR_INPUT_FLAG, json.dumps(executor_input)])
    assert output_file == "/r/output_metadata.json" and sorted(names) == ["metrics", "scores"]
    assert task_entrypoint.metrics_plan([task_entrypoint.EXECUTOR_INPUT_FLAG, "not json"]) == (None, [])


def executor_output_as_tfx_writes_it():
    """The RunPage's executor output as TFX's entrypoint writes it: every output tagged with
    `tfx_version`."""
    def artifact(name, **metadata):
        return {"artifacts": [{"name": name, "uri": f"/r/{name}",
                               "metadata": {"display_name": name.title(), "tfx_version": "1.17.0", **metadata}}]}

    return {"artifacts": {
        "metrics": artifact("metrics", auc=0.875, binary_accuracy=0.75),
        "classification_metrics": artifact("classification_metrics", confusionMatrix={
            "annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}], "rows": [{"row": [3.0, 1.0]}, {"row": [0.0, 4.0]}]}),
        "page": artifact("page"), "verdict": artifact("verdict")},
        "parameterValues": {"note": "kept"}}


def test_tidy_executor_output_drops_tfx_version_from_the_metrics_outputs_only(tmp_path):
    written = executor_output_as_tfx_writes_it()
    path = tmp_path / "output_metadata.json"
    path.write_text(json.dumps(written, indent=2))
    dropped = task_entrypoint.tidy_executor_output(str(path), ["metrics", "absent"])
    assert dropped == ["output metrics: tfx_version dropped (not a metric)"]
    expected = copy.deepcopy(written)
    del expected["artifacts"]["metrics"]["artifacts"][0]["metadata"]["tfx_version"]
    assert json.loads(path.read_text()) == expected


def test_tidy_executor_output_leaves_the_file_alone_with_nothing_to_drop(tmp_path):
    written = executor_output_as_tfx_writes_it()
    del written["artifacts"]["metrics"]["artifacts"][0]["metadata"]["tfx_version"]
    path = tmp_path / "output_metadata.json"
    text = json.dumps(written, separators=(",", ":"))  # not the layout MessageToJson would write
    path.write_text(text)
    for names in ([], ["absent"], ["metrics"]):
        assert task_entrypoint.tidy_executor_output(str(path), names) == [] and path.read_text() == text
    assert task_entrypoint.tidy_executor_output(str(tmp_path / "missing.json"), ["metrics"]) == []
