"""The demo pipeline's end-to-end wall time, per component, and the orchestration overhead;
then the same pipeline compiled for Kubeflow and run by kfp.local (`run-compiled`), side by side.

One fresh run of the demo profile in a temporary pipeline root (nothing cached). A component's
time is LocalDagRunner's launch of it (driver, executor, publishing to ML Metadata); the
overhead is the wall time left over: process start-up, imports, pipeline compilation, the
pre-flight checks and the command's run page (the RunPage step writes one too, timed as a
component). What a checkout makes once, on its first demo run (the
sample archive and the demo's pre-trained base, in data/generated/), is made before the timed
run and reported on its own line. The compiled run (`compile-kubeflow --local`, then
`run-compiled`, each container task a process of its own) starts from nothing too and pushes
to a serving folder of its own, so neither run has a baseline.
"""

import subprocess
import sys
import tempfile
import time
import json
import os


def prepare_first_use_inputs() -> float:
    """Seconds taken to make the demo's sample archive and pre-trained base if missing (else ~0)."""
    from pipeline.config import settings
    from pipeline.runners import inputs

    started = time.monotonic()
    demo = settings.demo_profile()
    inputs.prepare_inputs(demo)
    return time.monotonic() - started


def run_cli(*args: str) -> tuple[float, dict, subprocess.CompletedProcess]:
    """Wall seconds, summary and result of `python -m pipeline ARGS --summary-json ...`."""
    with tempfile.NamedTemporaryFile(suffix=".json") as summary_file:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pipeline", *args, "--summary-json", summary_file.name],
                                capture_output=True, text=True)
        wall = time.monotonic() - started
        text = open(summary_file.name).read()
    if not text:
        raise RuntimeError(f"`pipeline {args[0]}` wrote no summary:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall, json.loads(text), result


def time_run_page(pipeline_root: str, summary: dict) -> list[float]:
    """Seconds of two writes of the run's page (pipeline/run_page) in this process: the
    first with nothing loaded yet (TensorFlow, matplotlib, the SavedModel loader), the second
    warm, as at the end of a run, whose Trainer and Evaluator have loaded them already. Each
    reads the run's record back from ML Metadata first, as `python -m pipeline report` does."""
    from pipeline.config.settings import load_profile
    from pipeline.run_page import page

    seconds = []
    for _ in range(2):
        started = time.monotonic()
        page.write_recorded_run_page(pipeline_root, load_profile("demo").pipeline_name, "demo",
                                     run_id=summary["run_id"])
        seconds.append(time.monotonic() - started)
    return seconds


def main() -> int:
    first_use = prepare_first_use_inputs()
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as root:
        wall, summary, result = run_cli("run", "--profile", "demo", "--pipeline-root", os.path.join(root, "pipeline"),
                                        "--serving-dir", os.path.join(root, "serving"))
        page_writes = time_run_page(os.path.join(root, "pipeline"), summary)
        spec = os.path.join(root, "demo.yaml")
        subprocess.run([sys.executable, "-m", "pipeline", "compile-kubeflow", "--local", "--profile", "demo",
                        "--output", spec, "--pipeline-root", os.path.join(root, "compiled-pipeline"),
                        "--set", f"serving_dir={os.path.join(root, 'compiled-serving')}"],
                       check=True, capture_output=True)
        compiled_wall, compiled, compiled_result = run_cli("run-compiled", spec,
                                                           "--pipeline-root", os.path.join(root, "kfp"))
    components = summary["components"]
    work = sum(info["seconds"] for info in components.values())
    print(f"demo pipeline, fresh root, exit status {result.returncode}, blessed {summary['blessed']}, "
          f"test binary_accuracy {summary['metrics'].get('binary_accuracy', float('nan')):.3f}")
    print(f"{'component':<34} {'seconds':>8} {'share':>7}")
    for name, info in components.items():
        print(f"{name:<34} {info['seconds']:8.1f} {info['seconds'] / wall:7.1%}")
    print(f"{'components total':<34} {work:8.1f} {work / wall:7.1%}")
    print(f"{'orchestration overhead':<34} {wall - work:8.1f} {(wall - work) / wall:7.1%}")
    print(f"{'end-to-end wall time':<34} {wall:8.1f} {1:7.1%}")
    print(f"(before the timed run: {first_use:.1f} s to make or check this checkout's first-use inputs in data/generated/)")
    validator = components.get("InfraValidator", {}).get("seconds", float("nan"))
    print(f"InfraValidator (the candidate in TF Serving's loader: load, warm-up, a canary per signature; included "
          f"above): {validator:.1f} s = {validator / wall:.1%} of the end-to-end wall time (target: <= 5%)")
    step = components.get("RunPage", {}).get("seconds", float("nan"))
    print(f"RunPage step (the run's page, metrics, confusion matrix, ROC and verdict from its inputs; included "
          f"above): {step:.1f} s = {step / wall:.1%} of the end-to-end wall time (target: < 5%)")
    cold, warm = page_writes
    print(f"the command's page (the step's code again, with the run's record; included above): {warm:.2f} s warm = "
          f"{warm / wall:.1%} of the end-to-end wall time; {cold:.2f} s = {cold / wall:.1%} in a process with "
          f"nothing loaded")

    print(f"\nthe compiled spec through kfp.local (run-compiled), exit status {compiled_result.returncode}, "
          f"test binary_accuracy {compiled['metrics'].get('binary_accuracy', float('nan')):.3f}")
    print(f"{'task':<34} {'run-compiled s':>15} {'run s':>8} {'ratio':>7}")
    for name, info in compiled["components"].items():
        local_seconds = components.get(name, {}).get("seconds", float("nan"))
        print(f"{name:<34} {info['seconds']:15.1f} {local_seconds:8.1f} {info['seconds'] / max(local_seconds, 0.05):6.1f}x")
    print(f"{'end-to-end wall time':<34} {compiled_wall:15.1f} {wall:8.1f} {compiled_wall / wall:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
