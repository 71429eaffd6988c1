"""The demo's compiled pipeline with every task in a container of the built image:
`run-compiled --in-image IMAGE` (pipeline/containers/image_run.py) runs each task through the Docker
API (Docker, or Podman's `tools/image/podman-service`), as the image's own user (uid 1000).

`make image REUSE=1` reuses an image built from the same inputs (tests/support/container_host.py says
how these tests reach the host's engine from tools/in-env's root filesystem). Two runs in one
temporary root, as tests/compiled_run_test.py's but in containers. The first finds a model
already served (the serving tests' small model, put there by this process as another user),
has it as its baseline, is compared against it in the Evaluator's container (an allowed drop
of 1.0, so that it is pushed whatever the two score) and pushes a version above it in TF
Serving's layout. The second's data file is missing, so its first task fails inside its
container, and the run fails naming it."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow_model_analysis as tfma
import yaml

from support.container_host import IMAGE_UID
from support.records import compiled_run_records, run_page_problems
from pipeline.cli import exit_status

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("demo_inputs")]

TASKS = {"TfdsExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer", "Evaluator",
         "InfraValidator", "Pusher", "RunPage"}
# Cheap: one frozen-base epoch, no fine-tuning; the demo's seeded first run scores about 0.8.
FIRST = ("--param", "phase1_epochs=1", "--param", "phase2_epochs=0", "--param", "accuracy_bar=0.5")
RUN_TIMEOUT = 1500


def run_compiled(spec, root, *params, docker_host, image, summary=None, timeout=RUN_TIMEOUT):
    command = [sys.executable, "-m", "pipeline", "run-compiled", str(spec), *params, "--pipeline-root",
               str(root / "kfp"), "--in-image", image]
    if summary:
        command += ["--summary-json", str(summary)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "DOCKER_HOST": docker_host})
    return result, (json.loads(summary.read_text()) if summary and summary.exists() else None)


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory, image, docker_host, pushed_model):
    """The demo compiled with --local into a temporary root, its serving folder already serving
    `pushed_model`, run in the image: (root, spec, [(result, summary)], the served version)."""
    root = tmp_path_factory.mktemp("image_run")
    spec = root / "demo.yaml"
    compiled = subprocess.run(
        [sys.executable, "-m", "pipeline", "compile-kubeflow", "--local", "--profile", "demo", "--output", str(spec),
         "--image", image, "--pipeline-root", str(root / "pipeline"), "--set", f"serving_dir={root / 'serving'}",
         "--set", "evaluator.max_accuracy_drop=1.0"],
        capture_output=True, text=True, timeout=600)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    served = root / "serving" / "cats_vs_dogs" / os.path.basename(pushed_model)
    shutil.copytree(pushed_model, served)
    runs = [run_compiled(spec, root, *FIRST, docker_host=docker_host, image=image, summary=root / "summary-1.json")]
    return root, spec, runs, str(served)


def diff_metric_names(evaluation_uri):
    """The metrics TFMA compared against the baseline (its diff keys), over the whole split."""
    return {kv.key.name for record in tfma.load_metrics(evaluation_uri) if not record.slice_key.single_slice_keys
            for kv in record.metric_keys_and_values if kv.key.is_diff}


def output(result):
    return result.stdout[-4000:] + result.stderr[-6000:]


def test_every_task_ran_in_the_image_and_a_version_was_pushed_in_tf_servings_layout(image_runs, image):
    root, _, [(result, summary)], served = image_runs
    assert result.returncode == exit_status.PUSHED, output(result)
    assert f"kfp.local with every task in a container of {image} (uid {IMAGE_UID}" in result.stdout
    assert set(summary["components"]) == TASKS
    assert {info["status"] for info in summary["components"].values()} == {"complete"}
    for task in TASKS:
        assert f"[pipeline] {task} finished in" in result.stdout
    pushed = summary["pushed_model_dir"]
    assert os.path.dirname(pushed) == str(root / "serving" / "cats_vs_dogs")
    assert int(os.path.basename(pushed)) > int(os.path.basename(served))  # TF Serving serves the newest
    assert os.path.isfile(os.path.join(pushed, "saved_model.pb"))
    # Written by the image's user inside its container (this test's process is another user).
    assert os.stat(os.path.join(pushed, "saved_model.pb")).st_uid == int(IMAGE_UID)
    with open(os.path.join(pushed, "training_history.json")) as f:
        assert json.load(f)["phase"] == [1]  # the runtime parameters reached run_fn in the container


def test_the_run_page_steps_outputs_are_the_image_users_and_say_what_the_summary_says(image_runs):
    """Each run's RunPage task in the image, as the record holds its outputs: written by the
    image's user, and the same checks (tests/support/records.py) and metadata keys as the runs
    of tests/compiled_run_test.py, whose tasks are processes here. (Not their values: these runs
    train less, and every path is under another root.)"""
    root, _, runs, _ = image_runs
    records = compiled_run_records(root / "kfp")
    assert len(records) == len(runs)  # the failing run of a test below finishes no task
    for record, (result, summary) in zip(records, runs):
        assert summary["components"]["RunPage"]["status"] == "complete", output(result)
        assert run_page_problems(record, summary) == [], record.run_id
        task_folder = os.path.dirname(record.output("RunPage", "page").uri)
        written = [os.path.join(folder, name) for folder, folders, files in os.walk(task_folder)
                   for name in [""] + folders + files]
        assert {path for path in written if os.stat(path).st_uid != int(IMAGE_UID)} == set()
        assert {os.path.basename(path) for path in written} >= {"page", "verdict", "executor_output.json"}


def test_the_run_page_line_names_the_page_the_command_writes(image_runs):
    """Written by this process after the run, as tests/compiled_run_test.py's."""
    root, _, runs, _ = image_runs
    for result, summary in runs:
        assert summary["run_page"] == str(root / "kfp" / "reports" / summary["run_id"] / "report.html")
        assert os.path.isfile(summary["run_page"])
        assert f"Run page: {summary['run_page']}" in result.stdout.splitlines()


def test_the_model_already_served_is_the_baseline_the_evaluator_compares_against(image_runs):
    """Found in the mounted serving folder, written by another user, and evaluated beside the
    candidate in the Evaluator's container: the TFMA evaluation holds the two models' difference."""
    root, _, [(result, summary)], served = image_runs
    assert summary["baseline_model"] == served
    assert f"Baseline: {served}" in result.stdout
    assert summary["blessed"] is True and summary["skipped_versions"] == []
    [record] = compiled_run_records(root / "kfp")
    assert "binary_accuracy" in diff_metric_names(record.output("Evaluator", "evaluation").uri)
    assert sorted(os.listdir(root / "serving" / "cats_vs_dogs")) == sorted(
        [os.path.basename(served), os.path.basename(summary["pushed_model_dir"])])


def test_a_task_that_fails_in_its_container_fails_the_run(image_runs, image, docker_host):
    """The spec's data file is missing: ExampleGen exits 1 in its container, nothing after it
    runs, and the run exits 1 naming it (kfp.local's own Docker handler could read that exit
    as 0 against Podman's API)."""
    root, spec, *_ = image_runs
    document = yaml.safe_load(spec.read_text())
    archive = document["root"]["dag"]["tasks"]["TfdsExampleGen"]["inputs"]["parameters"]["archive"]
    path = archive["runtimeValue"]["constant"]
    assert os.path.isfile(path)
    broken = root / "missing-data.yaml"
    broken.write_text(spec.read_text().replace(path, path + ".missing"))
    result, summary = run_compiled(broken, root, docker_host=docker_host, image=image,
                                   summary=root / "summary-broken.json", timeout=600)
    assert result.returncode == exit_status.FAILED, output(result)
    assert summary["components"]["TfdsExampleGen"]["status"] == "failed"
    assert {info["status"] for name, info in summary["components"].items() if name != "TfdsExampleGen"} == {"not run"}
    assert "[pipeline] TfdsExampleGen FAILED in" in result.stdout
    assert "exited with status 1" in result.stderr
    assert f"Archive '{path}.missing' does not exist" in result.stderr
    assert "[pipeline] FAILED: TfdsExampleGen" in result.stderr


def test_a_missing_image_or_no_docker_api_is_a_usage_error_naming_the_fix(image_runs, docker_host):
    root, spec, *_ = image_runs
    cases = {"make image": (docker_host, "cats-dogs-tfx:no-such-tag"),
             "tools/image/podman-service start": (f"unix://{root}/no-such.sock", "cats-dogs-tfx:0.1.0")}
    running = {fix: subprocess.Popen([sys.executable, "-m", "pipeline", "run-compiled", str(spec), "--pipeline-root",
                                      str(root / "kfp"), "--in-image", image], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, "DOCKER_HOST": host})
               for fix, (host, image) in cases.items()}  # both at once: each is mostly start-up
    for fix, process in running.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == exit_status.USAGE, stdout[-3000:] + stderr[-3000:]
        assert fix in stderr + stdout, stdout[-3000:] + stderr[-3000:]
