"""The image and the demo with every task in a container of it, side by side with processes.

- Image: the time `make image REUSE=1` takes to reuse an image built from the same inputs; the
  time to rebuild it from the pinned-deps layer after a change to the project's code (a copy
  of the build context with one line added to pipeline/__init__.py, built with the engine's
  layer cache, so the stack's layer is reused and the project's layers are rebuilt); the
  image's size.
- The demo's wall time three ways, each in a fresh root with its own serving folder (so no run
  has a baseline), with the demo profile's defaults: `run` (LocalDagRunner, every component in
  this process), `run-compiled` (kfp.local, each task a process of this environment) and
  `run-compiled --in-image` (each task a container of the image, through the Docker API), per
  task and end to end, with ratios.

Needs Docker or Podman on the host (tests/support/container_host.py says how this reaches it
from tools/in-env's root filesystem); without one it says why and stops (exit status 0).

    tools/in-env python -m tools.bench.kubeflow_image_bench
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from pipeline.containers.engine import engine_path
from tests.support.container_host import engine_name, on_host, start_podman_service, why_no_engine

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_TIMEOUT = 3600
# What the Dockerfile copies (tools/image/inputs-hash hashes the same), less what .dockerignore drops.
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md")
CONTEXT_FOLDERS = ("pipeline", "components", "data")
CONTEXT_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "generated")
# The engine and base tools/image/build uses (tools/image/lib.sh), building a context of ours
# under a throwaway tag: IMAGE_TAG, CONTEXT and DOCKERFILE come in through the environment.
BUILD_VARIANT = r"""
set -euo pipefail
source tools/image/lib.sh
engine=$(choose_engine)
[ "$engine" = podman ] && use_podman_sandbox_conf 2>/dev/null
upstream=$UPSTREAM_BASE
[ "$engine" = podman ] && upstream=docker.io/library/$UPSTREAM_BASE
base=${BASE_IMAGE:-}
if [ -z "$base" ]; then
  if image_exists "$engine" "$upstream"; then base=$upstream; else base=$LOCAL_BASE; fi
fi
layers=()
[ "$engine" = podman ] && layers=(--layers)
"$engine" build "${layers[@]}" --build-arg "BASE_IMAGE=$base" -t "$IMAGE_TAG" -f "$CONTEXT/Dockerfile" "$CONTEXT" >&2
"$engine" image inspect --format '{{.Size}}' "$IMAGE_TAG"
"$engine" rmi "$IMAGE_TAG" >/dev/null
"""


def make_image_reuse() -> tuple[float, str, bool]:
    """Seconds `make image REUSE=1` took, the NAME:inputs-HASH it printed, and whether it reused
    that image (else it built it: none had today's inputs)."""
    started = time.monotonic()
    built = on_host(["make", "--no-print-directory", "-s", "image", "REUSE=1"], timeout=BUILD_TIMEOUT)
    if built.returncode != 0:
        raise RuntimeError(f"make image failed:\n{built.stderr[-4000:]}")
    return time.monotonic() - started, built.stdout.strip().splitlines()[-1], "[image] reusing " in built.stderr


def image_size(reference: str) -> int:
    engine = engine_name()
    script = 'source tools/image/lib.sh; [ "$1" = podman ] && use_podman_sandbox_conf 2>/dev/null; ' \
             '"$1" image inspect --format "{{.Size}}" "$2"'
    return int(on_host(["bash", "-c", script, "bash", engine, reference]).stdout.strip())


def rebuild_from_the_deps_layer(work: str) -> float:
    """Seconds to build a copy of the context whose project code changed by one line."""
    context = os.path.join(work, "context")
    os.makedirs(context)
    for name in CONTEXT_FILES:
        shutil.copy2(os.path.join(REPO_ROOT, name), context)
    for name in CONTEXT_FOLDERS:
        shutil.copytree(os.path.join(REPO_ROOT, name), os.path.join(context, name), ignore=CONTEXT_IGNORED)
    with open(os.path.join(context, "pipeline", "__init__.py"), "a") as init:
        init.write(f"# kubeflow_image_bench {time.time()}\n")
    host_context = engine_path(context)
    started = time.monotonic()
    built = on_host(["env", f"IMAGE_TAG=cats-dogs-tfx-bench:{os.getpid()}", f"CONTEXT={host_context}",
                     "bash", "-c", BUILD_VARIANT], timeout=BUILD_TIMEOUT)
    seconds = time.monotonic() - started
    if built.returncode != 0:
        raise RuntimeError(f"the bench's build failed:\n{built.stderr[-4000:]}")
    return seconds


def docker_host() -> tuple[str, bool]:
    """The Docker API's address, and whether this started Podman's service."""
    if engine_name() != "podman":
        return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), False
    return start_podman_service()


def run_cli(*args: str, env=None) -> tuple[float, dict, subprocess.CompletedProcess]:
    """Wall seconds, summary and result of `python -m pipeline ARGS --summary-json ...`."""
    with tempfile.NamedTemporaryFile(suffix=".json") as summary_file:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pipeline", *args, "--summary-json", summary_file.name],
                                capture_output=True, text=True, env=env)
        wall = time.monotonic() - started
        text = open(summary_file.name).read()
    if not text:
        raise RuntimeError(f"`pipeline {args[0]}` wrote no summary:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall, json.loads(text), result


def main() -> int:
    reason = why_no_engine()
    if reason:
        print(f"skipped: {reason}")
        return 0
    first_seconds, reference, first_reused = make_image_reuse()  # builds it if no image has today's inputs
    reuse_seconds, _, _ = make_image_reuse()
    size = image_size(reference)
    host, started_service = docker_host()
    try:
        with tempfile.TemporaryDirectory(prefix="kubeflow-image-bench-") as work:
            rebuild_seconds = rebuild_from_the_deps_layer(work)
            # The demo's first-use inputs (data/generated/) are made by the first run, outside the
            # timed compiled runs; the compile makes them too, before any run is timed.
            spec = os.path.join(work, "demo.yaml")
            subprocess.run([sys.executable, "-m", "pipeline", "compile-kubeflow", "--local", "--profile", "demo",
                            "--output", spec, "--image", reference, "--pipeline-root",
                            os.path.join(work, "compiled-pipeline"),
                            "--set", f"serving_dir={os.path.join(work, 'compiled-serving')}"],
                           check=True, capture_output=True)
            local = run_cli("run", "--profile", "demo", "--pipeline-root", os.path.join(work, "pipeline"),
                            "--serving-dir", os.path.join(work, "serving"))
            processes = run_cli("run-compiled", spec, "--pipeline-root", os.path.join(work, "kfp-processes"))
            # A serving folder of its own: the same spec, compiled again with another one.
            image_spec = os.path.join(work, "demo-image.yaml")
            subprocess.run([sys.executable, "-m", "pipeline", "compile-kubeflow", "--local", "--profile", "demo",
                            "--output", image_spec, "--image", reference, "--pipeline-root",
                            os.path.join(work, "image-pipeline"),
                            "--set", f"serving_dir={os.path.join(work, 'image-serving')}"],
                           check=True, capture_output=True)
            in_image = run_cli("run-compiled", image_spec, "--in-image", reference, "--pipeline-root",
                               os.path.join(work, "kfp-image"), env={**os.environ, "DOCKER_HOST": host})
    finally:
        if started_service:
            on_host(["tools/image/podman-service", "stop"])

    print(f"image {reference}: {size / 1e9:.2f} GB ({size} bytes)")
    print(f"  make image REUSE=1, an image with the same inputs there: {reuse_seconds:6.1f} s"
          f"   (the first call: {first_seconds:.1f} s, {'reused' if first_reused else 'built it'})")
    print(f"  rebuilt from the pinned-deps layer after a code change:  {rebuild_seconds:6.1f} s")
    print()
    runs = (("run", local), ("run-compiled", processes), ("--in-image", in_image))
    for name, (wall, summary, result) in runs:
        print(f"{name:<13} exit status {result.returncode}, test binary_accuracy "
              f"{summary['metrics'].get('binary_accuracy', float('nan')):.3f}, pushed {summary['pushed_model_dir']}")
    print(f"{'task':<20} {'run s':>8} {'compiled s':>11} {'in image s':>11} {'image/compiled':>15} {'image/run':>10}")
    tasks = list(in_image[1]["components"])
    for task in tasks:
        seconds = [summary["components"].get(task, {}).get("seconds", float("nan")) for _, summary, _ in
                   (local, processes, in_image)]
        print(f"{task:<20} {seconds[0]:8.1f} {seconds[1]:11.1f} {seconds[2]:11.1f} "
              f"{seconds[2] / max(seconds[1], 0.05):14.2f}x {seconds[2] / max(seconds[0], 0.05):9.2f}x")
    walls = [wall for wall, _, _ in (local, processes, in_image)]
    print(f"{'end-to-end wall':<20} {walls[0]:8.1f} {walls[1]:11.1f} {walls[2]:11.1f} "
          f"{walls[2] / walls[1]:14.2f}x {walls[2] / walls[0]:9.2f}x")
    failed = [name for name, (_, _, result) in zip(("run", "run-compiled", "--in-image"), (local, processes, in_image))
              if result.returncode != 0]
    if failed:
        print(f"runs that did not push: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
