"""Runs every benchmark in tools/bench (the `*_bench.py` scripts), one process each."""

import pathlib
import subprocess
import sys


def main() -> int:
    failed = []
    for script in sorted(pathlib.Path(__file__).parent.glob("*_bench.py")):
        print(f"\n=== {script.stem} ===", flush=True)
        if subprocess.call([sys.executable, str(script)]) != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nbenchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
