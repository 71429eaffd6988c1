"""The Kubeflow compile: KFP's own parsers accept it, the DAG and parameters are right, a golden
file catches changes, and one compiled task runs through TFX's container entrypoint.

No cluster here: the last test runs StatisticsGen's container command locally with the
executor input the KFP launcher would pass. Regenerate the golden file after an intended
change with `UPDATE_GOLDEN=1 tools/in-env python -m pytest tests/kubeflow_test.py`.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components.evaluator.eval_config import build_eval_config
from pipeline.cli import exit_status
from pipeline.cli import main as cli
from pipeline.config import settings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_SPEC = os.path.join(REPO_ROOT, "tests", "golden", "kubeflow_pipeline_spec.json")
IMAGE = "registry.example.com/cats-dogs-tfx:test"
GPU_IMAGE = "registry.example.com/cats-dogs-tfx-gpu:test"
ROOT = "gs://test-bucket/pipelines"
EXPECTED_UPSTREAM = {
    "TfdsExampleGen": set(),
    "StatisticsGen": {"TfdsExampleGen"},
    "SchemaGen": {"StatisticsGen"},
    "ExampleValidator": {"StatisticsGen", "SchemaGen"},
    "Transform": {"TfdsExampleGen", "SchemaGen"},
    "Trainer": {"Transform", "SchemaGen"},
    "Evaluator": {"TfdsExampleGen", "Trainer"},
    "InfraValidator": {"TfdsExampleGen", "Trainer"},
    "Pusher": {"Trainer", "Evaluator", "InfraValidator"},
    "RunPage": {"TfdsExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "InfraValidator", "Pusher"},
}
FULL_DEFAULTS = {
    "phase1_epochs": 20,
    "phase2_epochs": 10,
    "phase1_learning_rate": 1e-3,
    "phase2_learning_rate": 1e-5,
    "accuracy_bar": 0.95,
}


def compile_with_cli(output, *extra):
    return cli.main(["compile-kubeflow", "--output", str(output), "--pipeline-root", ROOT, "--image", IMAGE, *extra])


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    """The full profile's pipeline spec, compiled offline with no credentials."""
    output = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    assert compile_with_cli(output) == 0
    return output


@pytest.fixture(scope="module")
def spec(spec_file):
    return yaml.safe_load(spec_file.read_text())


@pytest.fixture(scope="module")
def job_file(tmp_path_factory, spec_file):  # after spec_file: TFX is imported once
    output = tmp_path_factory.mktemp("compiled") / "pipeline_job.json"
    assert compile_with_cli(
        output,
        "--set", "trainer.gpus=2",
        "--gpu-image", GPU_IMAGE,
        "--set", "trainer.phase1_epochs=3",
        "--beam-arg=--runner=DataflowRunner",
        "--beam-arg=--region=europe-west4",
    ) == 0
    return output


@pytest.fixture(scope="module")
def job(job_file):
    return json.loads(job_file.read_text())


def container_executors(pipeline_spec):
    return {
        label: executor["container"]
        for label, executor in pipeline_spec["deploymentSpec"]["executors"].items()
        if "container" in executor
    }


def test_yaml_is_a_kfp_pipeline_spec_and_component(spec_file, spec):
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    import kfp.components

    component = kfp.components.load_component_from_file(str(spec_file))
    assert component.name == "cats-vs-dogs"
    assert {name: component.component_spec.inputs[name].default for name in FULL_DEFAULTS} == FULL_DEFAULTS


def test_json_is_a_kfp_pipeline_job_with_the_root_and_defaults(job):
    parsed = json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
    assert parsed.runtime_config.gcs_output_directory == ROOT
    assert dict(parsed.runtime_config.parameter_values.items())["phase1_epochs"].number_value == 3


def test_dag_runs_example_gen_to_pusher_and_the_evaluator_finds_the_served_baseline(spec):
    tasks = spec["root"]["dag"]["tasks"]
    assert {name: set(tasks[name].get("dependentTasks", [])) for name in EXPECTED_UPSTREAM} == EXPECTED_UPSTREAM
    assert set(tasks) == set(EXPECTED_UPSTREAM)
    evaluator = tasks["Evaluator"]["inputs"]
    assert "baseline_model" not in evaluator.get("artifacts", {})
    pushed_to = json.loads(tasks["Pusher"]["inputs"]["parameters"]["push_destination"]["runtimeValue"]["constant"])
    assert evaluator["parameters"]["serving_dir"]["runtimeValue"]["constant"] == pushed_to["filesystem"]["base_directory"]


# Open-source KFP's backend compiles only these (backend/src/v2/compiler: "non-container and
# non-importer executor not implemented"); resolvers run on Vertex AI only.
OPEN_SOURCE_KFP_EXECUTORS = {"container", "importer"}


@pytest.mark.parametrize("profile_args", [
    ["--profile", "full"],
    ["--profile", "full", "--set", "trainer.gpus=1", "--gpu-image", GPU_IMAGE],
    ["--profile", "demo", "--set", "data.archive=none", "--set", "trainer.weights=gs://b/w.h5"],
    ["--profile", "demo", "--set", "data.archive=none", "--set", "trainer.weights=gs://b/w.h5", "--set", "trainer.gpus=1",
     "--gpu-image", GPU_IMAGE],
])
def test_every_executor_is_one_open_source_kfp_runs(tmp_path, profile_args):
    output = tmp_path / "pipeline.yaml"
    assert compile_with_cli(output, *profile_args) == 0

    executors = yaml.safe_load(output.read_text())["deploymentSpec"]["executors"]

    kinds = {label: set(executor) - {"resources"} for label, executor in executors.items()}
    assert all(kind <= OPEN_SOURCE_KFP_EXECUTORS and len(kind) == 1 for kind in kinds.values()), kinds
    assert len(executors) == len(EXPECTED_UPSTREAM)


def test_every_container_runs_the_image_through_our_task_entrypoint(spec):
    """pipeline/task/entrypoint.py, which hands over to TFX's entrypoint
    (tests/task_entrypoint_test.py runs it in every runner's shape)."""
    containers = container_executors(spec)
    assert len(containers) == len(EXPECTED_UPSTREAM)
    assert {container["image"] for container in containers.values()} == {IMAGE}
    assert {tuple(container["command"]) for container in containers.values()} == {
        ("python", "-m", "pipeline.task.entrypoint")
    }


def test_executor_classes_and_entrypoint_are_importable_in_the_image_stack(spec):
    import importlib

    from tfx.utils import import_utils

    importlib.import_module(container_executors(spec)["Trainer_executor"]["command"][2])
    for container in container_executors(spec).values():
        import_utils.import_class_by_path(container["args"][container["args"].index("--executor_class_path") + 1])


def test_code_is_referenced_by_module_path_not_packaged(spec):
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["Transform"]["inputs"]["parameters"]["preprocessing_fn"]["runtimeValue"]["constant"] == (
        "components.transform.preprocessing.preprocessing_fn"
    )
    assert tasks["Trainer"]["inputs"]["parameters"]["run_fn"]["runtimeValue"]["constant"] == "components.trainer.training.run_fn"
    assert "module_file" not in json.dumps(spec["root"])


def test_tunables_are_runtime_parameters_with_the_profile_defaults(spec):
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert {name: inputs[name]["defaultValue"] for name in inputs} == FULL_DEFAULTS
    tasks = spec["root"]["dag"]["tasks"]
    trainer_parameters = tasks["Trainer"]["inputs"]["parameters"]
    for name in ("phase1_epochs", "phase2_epochs", "phase1_learning_rate", "phase2_learning_rate"):
        assert trainer_parameters[name] == {"componentInputParameter": name}
    assert tasks["Evaluator"]["inputs"]["parameters"]["accuracy_bar"] == {"componentInputParameter": "accuracy_bar"}
    custom_config = json.loads(trainer_parameters["custom_config"]["runtimeValue"]["constant"])
    assert custom_config["base"] == "xception" and "phase1_epochs" not in custom_config


def test_models_are_pushed_under_the_pipeline_root(spec):
    destination = spec["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]["push_destination"]
    assert json.loads(destination["runtimeValue"]["constant"]) == {
        "filesystem": {"base_directory": f"{ROOT}/serving_model/cats_vs_dogs"}
    }


def test_gpu_request_only_on_the_trainer_when_asked(spec, job):
    assert all("resources" not in container for container in container_executors(spec).values())
    containers = container_executors(job["pipelineSpec"])
    assert containers.pop("Trainer_executor")["resources"]["accelerator"] == {
        "type": "nvidia.com/gpu", "count": "2", "resourceType": "nvidia.com/gpu", "resourceCount": "2"
    }
    assert all("resources" not in container for container in containers.values())


def compile_spec(tmp_path, *args):
    output = tmp_path / "pipeline.yaml"
    assert compile_with_cli(output, *args) == 0
    spec = yaml.safe_load(output.read_text())
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    return spec


def test_with_gpus_the_trainer_alone_runs_the_gpu_image_and_asks_for_one_nvidia_gpu(tmp_path):
    """TFX's per-component image map: the GPU image on the Trainer's executor, the CPU image on
    every other; the GPU request (NVIDIA's device plugin's resource) on the Trainer alone."""
    containers = container_executors(compile_spec(tmp_path, "--set", "trainer.gpus=1", "--gpu-image", GPU_IMAGE))
    trainer = containers.pop("Trainer_executor")
    assert trainer["image"] == GPU_IMAGE
    assert trainer["resources"]["accelerator"] == {
        "type": "nvidia.com/gpu", "count": "1", "resourceType": "nvidia.com/gpu", "resourceCount": "1"}
    assert len(containers) == len(EXPECTED_UPSTREAM) - 1
    assert {label: container["image"] for label, container in containers.items()} == {
        label: IMAGE for label in containers}
    assert [label for label, container in containers.items() if "resources" in container] == []


@pytest.mark.parametrize("accelerator", ["NVIDIA_L4", "NVIDIA_TESLA_T4", "NVIDIA_H100_80GB", "nvidia.com/mig-1g.5gb"])
def test_the_accelerator_setting_names_the_trainers_accelerator_type(tmp_path, accelerator):
    """Vertex AI's machine accelerator names, or another Kubernetes resource of NVIDIA's, in the
    spec itself: no edit of the compiled file."""
    spec = compile_spec(tmp_path, "--set", "trainer.gpus=2", "--set", f"trainer.accelerator={accelerator}",
                        "--gpu-image", GPU_IMAGE)
    assert container_executors(spec)["Trainer_executor"]["resources"]["accelerator"] == {
        "type": accelerator, "count": "2", "resourceType": accelerator, "resourceCount": "2"}


def test_the_job_names_both_images(job):
    images = {label: container["image"] for label, container in container_executors(job["pipelineSpec"]).items()}
    assert images.pop("Trainer_executor") == GPU_IMAGE
    assert set(images.values()) == {IMAGE}


def test_default_gpu_image_is_the_one_make_image_gpu_builds():
    with open(os.path.join(REPO_ROOT, "Makefile")) as makefile:
        text = makefile.read()
    assert re.search(r"^GPU_IMAGE \?= (\S+)$", text, re.M).group(1) == settings.DEFAULT_GPU_IMAGE
    assert re.search(r"^image-gpu:\n\t@IMAGE='\$\(GPU_IMAGE\)' GPU=1 tools/image/build$", text, re.M)


def test_run_compiled_says_a_gpu_task_runs_on_the_cpu_here(tmp_path, spec_file):
    """kfp.local has no accelerators to give: a spec compiled with GPUs runs its Trainer as every
    other task, and the run says so before its first task."""
    from pipeline.runners import compiled

    output = tmp_path / "gpu.yaml"
    assert compile_with_cli(output, "--set", "trainer.gpus=1", "--gpu-image", GPU_IMAGE) == 0
    spec = compiled.load_spec(str(output))
    asks = f"Trainer asks for 1 nvidia.com/gpu in image {GPU_IMAGE}; kfp.local has no accelerators to give, so it runs"
    assert compiled.accelerator_notes(spec, None) == [f"{asks} as a subprocess here, on the CPU"]
    assert compiled.accelerator_notes(spec, "localhost/cats-dogs-tfx:0.1.0") == [
        f"{asks} in a container of localhost/cats-dogs-tfx:0.1.0, on the CPU"]
    assert compiled.accelerator_notes(compiled.load_spec(str(spec_file)), None) == []


class RecordingDockerClient:
    """The part of docker-py's client a task in the image uses; records the containers created."""

    def __init__(self):
        self.created = []
        self.containers = self

    def create(self, image, command, **_):
        self.created.append((image, command))
        return FinishedContainer()


class FinishedContainer:
    attrs = {"State": {"Status": "exited", "ExitCode": 0}}

    def start(self):
        pass

    def reload(self):
        pass

    def logs(self, **_):
        return iter([])

    def remove(self, force=False):
        pass


def test_run_compiled_in_image_runs_the_gpu_task_in_the_runs_image_not_the_specs(tmp_path):
    """`--in-image IMAGE` is a local tool: kfp.local hands the task handler the spec's image (the
    GPU image, for the Trainer), and the task runs in IMAGE all the same."""
    from kfp.local import status

    from pipeline.containers import image_run as image_run_lib

    client = RecordingDockerClient()
    image_run = image_run_lib.ImageRun(client, "unix:///run/docker.sock", "localhost/cats-dogs-tfx:0.1.0",
                                       "sha256:cpu", "1000:1000", [])
    task = image_run_lib.ContainerTaskInImage(image_run, {}, image=GPU_IMAGE, full_command=["python", "-c", "pass"],
                                              pipeline_root=str(tmp_path), runner=None)
    assert task.run() == status.Status.SUCCESS
    assert client.created == [("sha256:cpu", ["python", "-c", "pass"])]


def test_run_compiled_in_image_mounts_what_the_tasks_open_not_the_paths_the_run_page_shows(tmp_path, demo_inputs):
    """The RunPage step's `config_changes` names the run's changed settings, paths among them
    (here a serving folder that does not exist yet, whose parent is the run's folder): text for
    the page, not a path to mount. A read-only mount of the run's folder over the tasks' own
    mounts would hide them from the image's user where that folder is not theirs."""
    from pipeline.containers import image_run as image_run_lib
    from pipeline.runners import compiled

    output = tmp_path / "local.yaml"
    assert cli.main(["compile-kubeflow", "--local", "--profile", "demo", "--output", str(output), "--pipeline-root",
                     str(tmp_path / "pipeline"), "--set", f"serving_dir={tmp_path / 'serving'}"]) == 0
    spec = compiled.load_spec(str(output))
    shown = json.loads(spec.root.dag.tasks["RunPage"].inputs.parameters["config_changes"].runtime_value.constant
                       .string_value)
    assert shown["serving_dir"][1] == str(tmp_path / "serving")
    assert shown["serving_dir"][0] == settings.load_profile("demo").serving_dir
    written, read = image_run_lib.local_paths(spec)
    assert str(tmp_path / "pipeline") in written and str(tmp_path / "serving" / "cats_vs_dogs") in written
    assert [path for path in read if str(tmp_path).startswith(path)] == []  # the run's folder or one above
    assert [path for path in read if path.startswith(shown["serving_dir"][0])] == []


def test_beam_arguments_reach_every_container(job):
    """The user's Beam arguments, then the task's image as Beam's SDK image: without a
    dependency flag TFX packs its installation into a temporary ~50 MB sdist in every Beam task."""
    for container in container_executors(job["pipelineSpec"]).values():
        assert container["args"][-3:] == ["--runner=DataflowRunner", "--region=europe-west4",
                                          f"--sdk_container_image={IMAGE}"]


def test_a_beam_dependency_of_the_users_own_is_kept():
    from pipeline.beam.arguments import task_beam_args
    from tfx.utils import dependency_utils

    own = ["--runner=DataflowRunner", "--setup_file=./setup.py"]
    assert task_beam_args(own, IMAGE) == own
    args = task_beam_args([], IMAGE)
    assert args == ["--runner=FnApiRunner", f"--sdk_container_image={IMAGE}"]
    assert dependency_utils.make_beam_dependency_flags(args) == args  # TFX builds no sdist


def test_beam_in_every_container_pins_the_in_process_runner_unless_a_runner_is_given(spec, job):
    for container in container_executors(spec).values():
        assert "--runner=FnApiRunner" in container["args"]
    for container in container_executors(job["pipelineSpec"]).values():
        assert "--runner=FnApiRunner" not in container["args"]


def normalized(pipeline_spec):
    """The spec without what changes with the TFX release: the SDK version."""
    return {key: value for key, value in pipeline_spec.items() if key != "sdkVersion"}


def test_compiled_spec_matches_the_golden_file(spec):
    text = json.dumps(normalized(spec), indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        with open(GOLDEN_SPEC, "w") as out:
            out.write(text)
    with open(GOLDEN_SPEC) as golden:
        assert text == golden.read(), (
            "the compiled Kubeflow spec changed; if intended, rerun with UPDATE_GOLDEN=1 and review the diff"
        )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "pipeline_name=Cats_Dogs"], "pipeline_name 'Cats_Dogs' is not a legal Kubeflow pipeline name"),
        (["--pipeline-root", "outputs/here"], "pipeline root 'outputs/here' is a local path"),
        (["--pipeline-root", "file:///srv/pipelines"], "is a local path"),
        (["--image", ""], "--image '' is not an image name"),
        (["--set", "trainer.epochs=3"], "unknown config key 'trainer.epochs'"),
        (["--profile", "demo"], "data.archive="),
        (["--set", "trainer.weights=/data/xception.h5"], "trainer.weights='/data/xception.h5' is a local file"),
        (["--set", "serving_dir=/srv/models"], "serving_dir '/srv/models' is a local path"),
        (["--pipeline-root", "s3://b/r"], "pipeline root 's3://b/r': TensorFlow 2.21 has no S3 filesystem"),
        (["--pipeline-root", "minio://mlpipeline/v2/artifacts"], "KFP's default MinIO root is S3 underneath"),
        (["--set", "serving_dir=s3://b/models"], "serving_dir 's3://b/models': TensorFlow 2.21 has no S3 filesystem"),
        (["--set", "trainer.gpus=1"], "error: trainer.gpus=1 runs the Trainer task in the GPU image: build it with "
         "`make image-gpu`, push it and pass --gpu-image IMAGE, e.g. --gpu-image REGISTRY/cats-dogs-tfx-gpu:0.1.0\n"),
        (["--gpu-image", GPU_IMAGE], f"--gpu-image {GPU_IMAGE}: only a Trainer that asks for GPUs runs it"),
        (["--set", "trainer.gpus=1", "--gpu-image", " "], "--gpu-image ' ' is not an image name"),
        (["--set", "trainer.gpus=1", "--set", "trainer.accelerator=NVIDIA_L5", "--gpu-image", GPU_IMAGE],
         "trainer.accelerator=NVIDIA_L5: must be nvidia.com/gpu"),
        (["--set", "trainer.gpus=1", "--set", "trainer.accelerator=NVIDIA_TESLA_K80", "--gpu-image", GPU_IMAGE],
         "NVIDIA_TESLA_K80: compute capability 3.7"),
        (["--set", "trainer.accelerator=NVIDIA_L4"], "trainer.accelerator=NVIDIA_L4: applies only with trainer.gpus"),
    ],
)
def test_bad_input_is_a_usage_error_and_writes_nothing(args, message, tmp_path, capsys):
    output = tmp_path / "pipeline.yaml"
    assert compile_with_cli(output, *args) == exit_status.USAGE
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_spec_names_its_pipeline_root(spec):
    """A run submitted without a root uses this one, not KFP's default minio:// root."""
    assert spec["defaultPipelineRoot"] == ROOT


def test_missing_pipeline_root_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["compile-kubeflow", "--output", str(tmp_path / "p.yaml")]) == exit_status.USAGE
    assert "needs --pipeline-root" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_default_image_is_the_one_make_image_builds():
    args = cli.build_parser().parse_args(["compile-kubeflow", "--output", "p.yaml"])
    assert args.image == settings.DEFAULT_IMAGE
    with open(os.path.join(REPO_ROOT, "Makefile")) as makefile:
        assert re.search(r"^IMAGE \?= (\S+)$", makefile.read(), re.M).group(1) == settings.DEFAULT_IMAGE


def test_runtime_values_reach_run_fn_custom_config(spec):
    """A run's parameter values, as the container entrypoint parses them, end up in custom_config."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint_utils
    from tfx.utils import json_utils

    from components.trainer.executor import with_tunables_in_custom_config

    trainer = spec["components"]["Trainer"]
    inputs_spec = json_format.ParseDict(trainer["inputDefinitions"], pipeline_spec_pb2.ComponentInputsSpec())
    executor_input = json_format.ParseDict(
        {"inputs": {"parameterValues": {
            "custom_config": spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["custom_config"]
            ["runtimeValue"]["constant"],
            "phase1_epochs": 3, "phase2_epochs": 0, "phase1_learning_rate": 0.01, "phase2_learning_rate": 1e-6,
        }}},
        pipeline_spec_pb2.ExecutorInput(),
    )
    exec_properties = entrypoint_utils.parse_execution_properties(
        executor_input.inputs.parameter_values, executor_input.inputs.parameters, inputs_spec
    )
    custom_config = json_utils.loads(with_tunables_in_custom_config(exec_properties)["custom_config"])
    assert custom_config["base"] == "xception"
    assert {key: (custom_config[key], type(custom_config[key])) for key in FULL_DEFAULTS if key != "accuracy_bar"} == {
        "phase1_epochs": (3, int),
        "phase2_epochs": (0, int),
        "phase1_learning_rate": (0.01, float),
        "phase2_learning_rate": (1e-6, float),
    }


def test_accuracy_bar_replaces_the_eval_config_value_threshold():
    from components.evaluator.executor import with_accuracy_bar
    from tensorflow_model_analysis.proto import config_pb2

    exec_properties = {
        "eval_config": json_format.MessageToJson(build_eval_config(0.95, 0.02)),
        "accuracy_bar": 0.6,
    }
    eval_config = json_format.Parse(with_accuracy_bar(exec_properties)["eval_config"], config_pb2.EvalConfig())
    gates = [
        (metric.class_name, per_slice.threshold)
        for metric in eval_config.metrics_specs[0].metrics
        for per_slice in metric.per_slice_thresholds
    ]
    assert [(name, threshold.value_threshold.lower_bound.value) for name, threshold in gates] == [
        ("BinaryAccuracy", 0.6)
    ]
    assert gates[0][1].change_threshold.absolute.value == pytest.approx(-0.02)


def test_accuracy_bar_without_an_accuracy_threshold_is_an_error():
    from components.evaluator.executor import with_accuracy_bar

    with pytest.raises(ValueError, match="no BinaryAccuracy value threshold"):
        with_accuracy_bar({"eval_config": "{}", "accuracy_bar": 0.6})


def write_tiny_examples(folder):
    import tensorflow as tf

    split = folder / "Split-train"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
        for index in range(3):
            example = tf.train.Example(features=tf.train.Features(feature={
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\xff\xd8 not decoded here"])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 2])),
                "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"{index}.jpg".encode()])),
            }))
            writer.write(example.SerializeToString())


def launcher_executor_input(pipeline_spec, task_name, input_uris, output_uris, output_file):
    """The ExecutorInput the KFP launcher passes for `{{$}}`: artifacts typed as the compiled component
    declares them, the task's constant parameters, and where to write the executor output."""
    component = pipeline_spec["components"][pipeline_spec["root"]["dag"]["tasks"][task_name]["componentRef"]["name"]]

    def artifacts(definitions, uris, first_id):
        return {
            key: {"artifacts": [{
                "name": f"projects/p/locations/l/metadataStores/default/artifacts/{first_id + offset}",
                "type": definitions[key]["artifactType"],
                "uri": uri,
                "metadata": metadata,
            }]}
            for offset, (key, (uri, metadata)) in enumerate(uris.items())
        }

    parameters = pipeline_spec["root"]["dag"]["tasks"][task_name]["inputs"]["parameters"]
    return {
        "inputs": {
            "artifacts": artifacts(component["inputDefinitions"]["artifacts"], input_uris, 1),
            "parameterValues": {name: value["runtimeValue"]["constant"] for name, value in parameters.items()},
        },
        "outputs": {
            "artifacts": artifacts(component["outputDefinitions"]["artifacts"], output_uris, 100),
            "outputFile": output_file,
        },
    }


def test_compiled_statistics_gen_task_runs_with_declared_types_as_vertex_gives_them(spec, tmp_path):
    examples, statistics, output_file = tmp_path / "examples", tmp_path / "statistics", tmp_path / "task" / "output.json"
    write_tiny_examples(examples)
    executor_input = launcher_executor_input(
        spec,
        "StatisticsGen",
        {"examples": (str(examples), {"split_names": '["train"]', "span": 0})},
        {"statistics": (str(statistics), {})},
        str(output_file),
    )
    container = container_executors(spec)["StatisticsGen_executor"]
    args = [json.dumps(executor_input) if arg == "{{$}}" else arg for arg in container["args"]]
    finished = subprocess.run(
        container["command"] + args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")},
    )
    assert finished.returncode == 0, finished.stderr[-3000:]

    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString((statistics / "Split-train" / "FeatureStats.pb").read_bytes())
    assert stats.datasets[0].num_examples == 3
    executor_output = json_format.Parse(output_file.read_text(), pipeline_spec_pb2.ExecutorOutput())
    written = executor_output.artifacts["statistics"].artifacts[0]
    assert written.uri == str(statistics)
    assert json.loads(written.metadata["split_names"]) == ["train"]


def test_the_gate_and_the_run_page_are_never_taken_from_kfps_cache(spec):
    """The spec is compiled once, so the model served when it was compiled means nothing at run
    time: the gate's tasks run every time (their verdict depends on the serving folder then), and
    so does the run page (it names the version served as it runs)."""
    tasks = spec["root"]["dag"]["tasks"]
    assert {name: task["cachingOptions"].get("enableCache", False) for name, task in tasks.items()} == {
        name: name not in ("Evaluator", "Pusher", "RunPage") for name in tasks}
    assert "gate_baseline" not in tasks["Evaluator"]["inputs"]["parameters"]
    assert "gate_baseline" not in spec["components"]["Evaluator"]["inputDefinitions"]["parameters"]


def test_the_run_pages_outputs_are_the_types_kfps_ui_renders(spec):
    """The backend's launcher records an output under its instance schema's YAML `title`
    (backend/src/v2/metadata/client.go, SchemaToArtifactType); the UI's viewers pick the
    artifacts of these four types (frontend/src/components/viewers/MetricsVisualizations.tsx)."""
    task = spec["root"]["dag"]["tasks"]["RunPage"]
    outputs = spec["components"][task["componentRef"]["name"]]["outputDefinitions"]["artifacts"]
    titles = {name: yaml.safe_load(output["artifactType"]["instanceSchema"])["title"] for name, output in outputs.items()}
    assert titles == {"page": "system.HTML", "metrics": "system.Metrics",
                      "classification_metrics": "system.ClassificationMetrics", "verdict": "system.Markdown"}
