"""Runs every benchmark in tools/bench (the `*_bench.py` scripts), one process each, as modules
from the checkout's top (`python -m tools.bench.NAME`), so that they import the tests' shared
helpers as `tests.support`."""

import pathlib
import subprocess
import sys


def main() -> int:
    failed = []
    here = pathlib.Path(__file__).resolve().parent
    for script in sorted(here.glob("*_bench.py")):
        print(f"\n=== {script.stem} ===", flush=True)
        if subprocess.call([sys.executable, "-m", f"tools.bench.{script.stem}"], cwd=here.parent.parent) != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nbenchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
