# Every target but `clean` sets the environment up first when needed (tools/setup is a no-op
# when nothing changed) and runs in it through tools/in-env.
SHELL := /bin/bash
IN_ENV := tools/in-env
PROFILE ?= demo
# The image the compiled Kubeflow pipeline runs (pipeline/config's DEFAULT_IMAGE).
IMAGE ?= cats-dogs-tfx:0.1.0
# The same image with TensorFlow's CUDA libraries, for the Trainer task on a GPU node (docs/gpu.md).
GPU_IMAGE ?= cats-dogs-tfx-gpu:0.1.0
# The same image as a Beam SDK worker image (docs/scaling.md); needs Beam's SDK image.
BEAM_WORKER_IMAGE ?= cats-dogs-tfx-beam:0.1.0

.PHONY: setup test demo bench image image-gpu image-beam-worker clean

# GPU=1 installs TensorFlow's CUDA libraries (pyproject.toml's gpu extra), GPU=0 removes them;
# unset: installed when the host has an NVIDIA driver, else the environment keeps what it has.
setup:
	@GPU='$(GPU)' tools/setup

# Two pytest workers; the tests that share a pipeline run (or the image) stay on one worker
# (tests/support/xdist_groups.py), so each run is still made once.
TEST_WORKERS ?= 2

test: setup
	$(IN_ENV) python -m pytest -n $(TEST_WORKERS) --dist loadgroup

demo: setup
	$(IN_ENV) python -m pipeline run --profile $(PROFILE)

bench: setup
	$(IN_ENV) python tools/bench/run_all.py

# Builds Dockerfile with docker where a Docker engine answers, else with Podman; with no
# registry reachable, on a local base made from Debian 13's packages (tools/image/build says
# how). BASE_IMAGE=NAME picks the base, ENGINE=docker|podman the engine, BUILD_ARGS adds
# arguments (e.g. --no-cache). Runs on the host: it needs no project environment.
image:
	@IMAGE='$(IMAGE)' GPU=0 tools/image/build

# `make image` with the Dockerfile's GPU=1: TensorFlow's CUDA libraries in the image (pyproject.toml's
# gpu extra). compile-kubeflow --gpu-image names it for the Trainer task.
image-gpu:
	@IMAGE='$(GPU_IMAGE)' GPU=1 tools/image/build

# The Dockerfile's target beam-worker: the image above with Beam's boot entrypoint, copied from
# Beam's Python SDK image of the pinned versions (pulled from a registry; BEAM_SDK_IMAGE=NAME
# names another copy of it).
image-beam-worker:
	@IMAGE='$(BEAM_WORKER_IMAGE)' TARGET=beam-worker tools/image/build

clean:
	rm -rf outputs data/generated
	find serving_model -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
