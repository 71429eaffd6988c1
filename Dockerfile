# The image the compiled Kubeflow pipeline runs (README, "Deploying to Kubeflow Pipelines"):
# Python 3.13 on Debian 13 (glibc 2.41; TFX 1.21's wheels need glibc >= 2.39), the stack
# pinned in pyproject.toml and this project, run as a non-root numeric user.
#
#   make image                       docker where a Docker engine answers, else Podman
#   docker build -t cats-dogs-tfx:0.1.0 .
#   make image-gpu                   docker build --build-arg GPU=1 -t cats-dogs-tfx-gpu:0.1.0 .
#
# BASE_IMAGE chooses the base: the official python image by default; offline (no registry),
# tools/image/base-from-rootfs makes an equivalent from Debian 13's packages and `make image`
# passes it here. The base must give Debian 13 with apt, and `python` and `pip` on PATH.
#
# No `# syntax=` line: it would make BuildKit pull its frontend from a registry. The cache
# mount below is understood by BuildKit's built-in frontend (Docker 23+, where BuildKit is
# the default builder) and by Podman/Buildah (1.24+; Podman 4.3 tested); Docker's legacy
# builder (DOCKER_BUILDKIT=0) does not know RUN --mount and refuses the file.
#
# The same image as a Beam SDK worker image (docs/scaling.md): the target beam-worker,
#
#   make image-beam-worker           docker build --target beam-worker -t cats-dogs-tfx-beam:0.1.0 .
#
# Dataflow (--sdk_container_image), Flink and Spark (--environment_type=DOCKER) start workers
# from an image by running its /opt/apache/beam/boot, which comes from Beam's own Python SDK
# image of the same Beam and Python versions (BEAM_SDK_IMAGE), as Beam documents for custom
# containers. The default target does not use that stage, so a build without a registry (make
# image) never pulls it. (A stage chosen by a build argument, FROM stage-${ARG}, would not
# build with Podman 4.3, which does not resolve a stage's name from an argument.)
ARG BASE_IMAGE=python:3.13-slim-trixie
ARG BEAM_SDK_IMAGE=apache/beam_python3.13_sdk:2.77.0

FROM ${BEAM_SDK_IMAGE} AS beam-sdk

FROM ${BASE_IMAGE} AS kubeflow

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# C and C++ compilers from Debian: pyfarmhash (tensorflow-data-validation needs it) is published
# only as source and is compiled by pip; TF Serving's loader for the InfraValidator
# (components/serving/run_saved_model.c) is compiled against TensorFlow's C API below.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc g++ libc6-dev \
    && rm -rf /var/lib/apt/lists/*

# A numeric user (uid 1000): a cluster enforcing runAsNonRoot can verify a number, not a name.
# Its home holds the TFDS and Keras caches. KFP's launcher makes local mirrors of artifact
# URIs under /gcs, /minio and /s3 (backend/src/v2/component/launcher_v2.go, LocalPathForURI,
# prepareOutputFolders) as the task's user, so they exist and are writable by any uid.
RUN groupadd --gid 1000 tfx \
    && useradd --uid 1000 --gid 1000 --create-home --home-dir /home/tfx --shell /bin/bash tfx \
    && mkdir -m 1777 /gcs /minio /s3

WORKDIR /pipeline
# The pinned stack first, from pyproject.toml alone, so that its layer (about 3.5 minutes) is
# rebuilt only when the pins change, not on every change to the project's code. Pip's
# downloads stay in a build cache between builds (not in the image). GPU=1 (`make image-gpu`)
# adds pyproject's gpu extra to the pins: TensorFlow's CUDA 12 and cuDNN 9 wheels, which its
# libraries find in site-packages/nvidia/ (their RUNPATH), for the Trainer task on a GPU node.
# GPU=0 installs exactly what an image built without the argument has.
ARG GPU=0
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import os, sys, tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; gpu = os.environ.get('GPU', '0'); gpu in ('0', '1') or sys.exit(f'build argument GPU={gpu}: expected 0 (CPU) or 1 (with the gpu extra)'); print(*project['dependencies'], *(project['optional-dependencies']['gpu'] if gpu == '1' else []), sep='\n')" \
        > /tmp/pins.txt \
    && pip install -r /tmp/pins.txt \
    && rm /tmp/pins.txt
# Then the project itself, its dependencies already there.
COPY README.md ./
COPY pipeline ./pipeline
COPY components ./components
COPY data ./data
RUN --mount=type=cache,target=/root/.cache/pip pip install --no-deps -e .
# The InfraValidator's C program, compiled now so that no task compiles it (outputs/c_loader/).
RUN python -m components.serving.c_loader

# The project is read-only to the user; what the pipeline writes by default under the checkout
# (outputs/, serving_model/, data/generated/) is the user's. Kubeflow tasks write under the
# pipeline root that is mounted in (or gs://), which uid 1000 must be able to write.
RUN mkdir -p outputs serving_model data/generated \
    && chown 1000:1000 outputs serving_model data/generated \
    && chmod -R a+rX /pipeline

USER 1000:1000
# Says "the project's image" to `python -m pipeline doctor` (pipeline/environment/gpu.py).
ENV CATS_DOGS_TFX_ENV=image

# A Beam SDK worker image: Beam's boot entrypoint (it fetches the job's staged files and starts
# the SDK harness with `python` from PATH: this image's interpreter, the project installed).
FROM kubeflow AS beam-worker
COPY --from=beam-sdk /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]

# The default target: the image every Kubeflow task runs.
FROM kubeflow
