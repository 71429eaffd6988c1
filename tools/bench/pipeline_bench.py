"""The demo pipeline's end-to-end wall time, per component, and the orchestration overhead.

One fresh run of the demo profile in a temporary pipeline root (nothing cached). A component's
time is LocalDagRunner's launch of it (driver, executor, publishing to ML Metadata); the
overhead is the wall time left over: process start-up, imports, pipeline compilation, the
pre-flight checks and the run report. What a checkout makes once, on its first demo run (the
sample archive and the demo's pre-trained base, in data/generated/), is made before the timed
run and reported on its own line.
"""

import subprocess
import sys
import tempfile
import time
import json
import os


def prepare_first_use_inputs() -> float:
    """Seconds taken to make the demo's sample archive and pre-trained base if missing (else ~0)."""
    from pipeline import config, local_runner

    started = time.monotonic()
    demo = config.demo_profile()
    local_runner.prepare_inputs(demo)
    return time.monotonic() - started


def main() -> int:
    first_use = prepare_first_use_inputs()
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as root:
        summary_path = os.path.join(root, "summary.json")
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", "--profile", "demo",
             "--pipeline-root", os.path.join(root, "pipeline"), "--serving-dir", os.path.join(root, "serving"),
             "--summary-json", summary_path],
            capture_output=True, text=True,
        )
        wall = time.monotonic() - started
        if not os.path.exists(summary_path):
            print(result.stdout[-3000:], result.stderr[-3000:])
            return 1
        summary = json.load(open(summary_path))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
