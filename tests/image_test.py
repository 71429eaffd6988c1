"""The image builds and works: `make image` builds it (or an image built from the same inputs,
tagged NAME:inputs-HASH by tools/image/build, is reused), then commands run inside it
(tests/support/container_host.py says how the host's engine is reached)."""

import importlib.metadata

import pytest

from support.container_host import IMAGE_UID, run_in_image

IMPORTS = "import tfx, tensorflow, ml_metadata, tensorflow_data_validation, pipeline, components"
# Compiled in the image against the TensorFlow wheel's C API, as pipeline/serving's C loader is.
C_API_PROGRAM = r"""
#include <stdio.h>
#include <tensorflow/c/c_api.h>
int main(void) { printf("TF_Version %s\n", TF_Version()); return 0; }
"""
COMPILE_AND_RUN = (
    'tf=$(python -c "import importlib.util as u; print(u.find_spec(\'tensorflow\').submodule_search_locations[0])") '
    '&& printf "%s" "$1" > /tmp/tf_version.c && cc -std=c11 -Wall -Werror /tmp/tf_version.c -o /tmp/tf_version -I"$tf/include" '
    '-L"$tf" -l:libtensorflow_cc.so.2 -l:libtensorflow_framework.so.2 -Wl,-rpath,"$tf" && /tmp/tf_version'
)


def test_the_stack_and_the_project_import_in_the_image(image):
    result = run_in_image(image, "python", "-c", f"{IMPORTS}; print('imported')")
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().splitlines()[-1] == "imported"


def test_the_image_runs_as_its_numeric_non_root_user(image):
    result = run_in_image(image, "id", "-u")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == IMAGE_UID


def test_the_user_writes_its_home_the_default_outputs_and_kfps_local_paths(image):
    """TFDS and Keras caches, the pipeline's default outputs, and KFP's launcher's /gcs, /minio and
    /s3 mirrors of artifact URIs, all as the image's user."""
    paths = ["$HOME/.keras", "/pipeline/outputs/x", "/pipeline/serving_model/x", "/pipeline/data/generated/x",
             "/gcs/bucket/x", "/minio/bucket/x", "/s3/bucket/x"]
    script = " && ".join(f"mkdir -p {path}" for path in paths) + " && echo written"
    result = run_in_image(image, "sh", "-c", script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "written"


def test_a_c_compiler_builds_against_tensorflows_c_api_in_the_image(image):
    """What the TF Serving check does when it runs: compile C against TensorFlow's C API."""
    script = f"command -v cc >&2 && command -v gcc >&2 && command -v g++ >&2 && {COMPILE_AND_RUN}"
    result = run_in_image(image, "sh", "-c", script, "sh", C_API_PROGRAM)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip() == f"TF_Version {importlib.metadata.version('tensorflow')}"


def test_the_docker_api_lists_and_runs_the_image(docker_host, image):
    """What kfp.local's DockerRunner needs: the image through Docker's API (the `docker` Python
    package), served by `podman system service` where Podman is the engine."""
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=docker_host)
    try:
        tags = {tag for listed in client.images.list() for tag in listed.tags}
        assert image in tags or image.removeprefix("localhost/") in tags, sorted(tags)
        output = client.containers.run(image, ["id", "-u"], remove=True, stderr=False)
        assert output.decode().strip() == IMAGE_UID
    finally:
        client.close()


# In the image: a job service and a worker pool (pipeline/beam/services.py), and a
# Beam pipeline whose one step, on an SDK worker process the pool starts with the image's
# interpreter, imports what the pipeline's Beam steps run.
BEAM_WORKER_SCRIPT = r"""
import os, sys, tempfile
import apache_beam as beam
from pipeline.beam import services as beam_services
from pipeline.beam.arguments import portable_beam_args

def step_imports(_):
    import components.example_gen.executor, components.transform.executor, components.evaluator.executor
    import tensorflow_data_validation, tensorflow_transform, tensorflow_model_analysis
    return f"{os.getpid()} {os.getuid()} {sys.executable} {components.transform.executor.__file__}"

out = os.path.join(tempfile.mkdtemp(), "worker")
with beam_services.running() as services:
    with beam.Pipeline(argv=portable_beam_args(services.job_endpoint, services.worker_pool)) as pipeline:
        _ = (pipeline | beam.Create([0]) | beam.Map(step_imports)
             | beam.io.WriteToText(out, shard_name_template=""))
print(os.getpid(), open(out).read().strip())
"""


def test_the_image_serves_as_a_beam_sdk_worker_for_the_pipelines_steps(image):
    """What an SDK worker started from the image does: Beam's harness, with the image's
    interpreter, imports the project's Beam steps and the TFX libraries they run."""
    result = run_in_image(image, "python", "-c", BEAM_WORKER_SCRIPT)
    assert result.returncode == 0, result.stderr[-4000:]
    main_pid, worker_pid, uid, python, module = result.stdout.strip().splitlines()[-1].split()
    assert worker_pid != main_pid and uid == IMAGE_UID
    assert module == "/pipeline/components/transform/executor.py"
    assert python == run_in_image(image, "python", "-c", "import sys; print(sys.executable)").stdout.strip()
