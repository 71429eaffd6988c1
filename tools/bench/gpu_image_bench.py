"""The GPU image against the CPU image, side by side in one run: build time and size.

- Both images first as `make image REUSE=1` and `make image-gpu REUSE=1` make them (built when
  none has today's inputs), so pip's download cache holds every wheel of both.
- Then each variant is built again from the Dockerfile by tools/image/build, the same offline
  build as `make image`, under a throwaway name and without the engine's layer cache
  (BUILD_ARGS=--no-cache): every layer is made again, the Debian packages downloaded again, the
  wheels taken from pip's cache. CPU first, then GPU; the throwaway images are removed after.
- Sizes: the engine's size of each image, and the CUDA wheels' share (site-packages/nvidia in the
  GPU image).

Needs Docker or Podman on the host (tests/support/container_host.py says how this reaches it
from tools/in-env's root filesystem); without one it says why and stops (exit status 0).

    tools/in-env python -m tools.bench.gpu_image_bench
"""

import os
import re
import sys
import time

from tests.support.container_host import on_host, run_in_image, why_no_engine

BUILD_TIMEOUT = 3600
# Where the image's Python keeps the CUDA wheels' libraries (pyproject.toml's gpu extra).
NVIDIA_FOLDER_SIZE = ("import os, subprocess, sysconfig; folder = os.path.join(sysconfig.get_paths()['purelib'], "
                      "'nvidia'); print(subprocess.run(['du', '-sb', folder], capture_output=True, text=True, "
                      "check=True).stdout.split()[0])")
VARIANTS = (("CPU", "image", "0"), ("GPU", "image-gpu", "1"))


def make_image(target: str) -> tuple[str, bool]:
    """`make TARGET REUSE=1`: the NAME:inputs-HASH it printed, and whether it reused it."""
    built = on_host(["make", "--no-print-directory", "-s", target, "REUSE=1"], timeout=BUILD_TIMEOUT)
    if built.returncode != 0:
        raise RuntimeError(f"make {target} failed:\n{built.stderr[-4000:]}")
    return built.stdout.strip().splitlines()[-1], "[image] reusing " in built.stderr


def rebuild_without_layer_cache(gpu: str) -> tuple[float, int]:
    """Seconds tools/image/build took to build the variant from scratch (pip's downloads
    cached), and the image's size in bytes; the throwaway image is removed after."""
    name = f"cats-dogs-tfx-bench-{'gpu' if gpu == '1' else 'cpu'}:{os.getpid()}"
    started = time.monotonic()
    built = on_host(["env", f"IMAGE={name}", f"GPU={gpu}", "BUILD_ARGS=--no-cache", "tools/image/build"],
                    timeout=BUILD_TIMEOUT)
    seconds = time.monotonic() - started
    if built.returncode != 0:
        raise RuntimeError(f"the bench's build (GPU={gpu}) failed:\n{built.stderr[-4000:]}")
    size = int(re.search(r"image size: [\d.]+ GB \((\d+) bytes\)", built.stderr).group(1))
    inputs_tag = built.stdout.strip().splitlines()[-1]
    on_host(["bash", "-c", 'source tools/image/lib.sh; e=$(choose_engine); [ "$e" = podman ] && '
             'use_podman_sandbox_conf 2>/dev/null; "$e" rmi "$@" >/dev/null', "bash", name, inputs_tag])
    return seconds, size


def image_size(reference: str) -> int:
    inspected = on_host(["bash", "-c", 'source tools/image/lib.sh; e=$(choose_engine); [ "$e" = podman ] && '
                         'use_podman_sandbox_conf 2>/dev/null; "$e" image inspect --format "{{.Size}}" "$1"',
                         "bash", reference])
    return int(inspected.stdout.strip())


def nvidia_folder_bytes(reference: str) -> int:
    result = run_in_image(reference, "python", "-c", NVIDIA_FOLDER_SIZE)
    if result.returncode != 0:
        raise RuntimeError(f"measuring the CUDA wheels in {reference} failed:\n{result.stderr[-2000:]}")
    return int(result.stdout.strip().splitlines()[-1])


def main() -> int:
    reason = why_no_engine()
    if reason:
        print(f"skipped: {reason}")
        return 0
    references = {label: make_image(target) for label, target, _ in VARIANTS}
    sizes = {label: image_size(reference) for label, (reference, _) in references.items()}
    rebuilds = {label: rebuild_without_layer_cache(gpu) for label, _, gpu in VARIANTS}
    cuda_bytes = nvidia_folder_bytes(references["GPU"][0])

    print(f"{'image':<6} {'reference':<52} {'size GB':>8} {'build s':>8}   (build: every layer again, "
          "pip's downloads cached)")
    for label, (reference, reused) in references.items():
        seconds, rebuilt_size = rebuilds[label]
        print(f"{label:<6} {reference:<52} {sizes[label] / 1e9:8.2f} {seconds:8.0f}   "
              f"({'reused' if reused else 'built'} by make; the rebuild's image {rebuilt_size / 1e9:.2f} GB)")
    print(f"GPU/CPU: size {sizes['GPU'] / sizes['CPU']:.2f}x (+{(sizes['GPU'] - sizes['CPU']) / 1e9:.2f} GB), "
          f"build time {rebuilds['GPU'][0] / rebuilds['CPU'][0]:.2f}x "
          f"(+{rebuilds['GPU'][0] - rebuilds['CPU'][0]:.0f} s)")
    print(f"the CUDA wheels in the GPU image (site-packages/nvidia): {cuda_bytes / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
