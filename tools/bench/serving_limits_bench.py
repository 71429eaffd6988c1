"""What one request can cost the serving process: peak memory and seconds per kind of request.

The tests' small serving model (tests/support/serving_model.py: MobileNetV3Small at 32x32,
random weights, a real transform graph, exported as the Trainer exports) is pushed to a
temporary folder and served by TensorFlow's C++ SavedModel loader (TF Serving's, the C program
of components.serving.c_loader). Each request runs in a fresh loader process: its peak resident
memory (VmHWM) once the model is loaded and has answered one 8x8 JPEG (so that the first run's
own costs are in it), then after the request, and the request's seconds. Requests: an ordinary
150x150 JPEG, a 4000x3000 JPEG (a phone photo), a 20000x20000 PNG of zeros (1.2 MB of bytes,
1.2 GB of pixels), which the served signatures must refuse before decoding it
(trainer.max_image_pixels, 40 megapixels by default), and PNGs of zeros at the limit (8000x5000),
alone and 10 in one request: what a request can still cost.
"""

import sys
import tempfile
import time

from components import features
from components.serving import c_loader
from pipeline.serving import check
from tests.support.serving_model import export_and_push

MB = 1e6
ORDINARY, OVERSIZED = "ordinary: JPEG 150x150", "oversized: PNG 20000x20000"


def requests() -> list[tuple[str, list[bytes]]]:
    at_limit = check.blank_png(8000, 5000)
    return [
        (ORDINARY, [check.image("JPEG", 150, 150)]),
        ("photo: JPEG 4000x3000", [check.image("JPEG", 4000, 3000)]),
        (OVERSIZED, [check.blank_png(20000, 20000)]),
        ("at the limit: PNG 8000x5000", [at_limit]),
        ("10 x PNG 8000x5000", [at_limit] * 10),
    ]


def measure(version_dir: str, images: list[bytes]) -> dict:
    """One fresh loader process, one request: peaks before and after the request."""
    with c_loader.CSavedModel(version_dir) as model:
        model.run(features.SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: [check.image("JPEG", 8, 8)]})
        loaded = model.peak_memory_bytes()
        started = time.perf_counter()
        try:
            model.run(features.SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: images})
            outcome = "OK"
        except c_loader.RequestError as error:
            outcome = f"{error.code_name}: {error.message.splitlines()[0][:150]}"
        seconds = time.perf_counter() - started
        peak = model.peak_memory_bytes()
    return {"loaded": loaded, "peak": peak, "seconds": seconds, "outcome": outcome}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="serving-limits-bench-") as root:
        started = time.perf_counter()
        version_dir = export_and_push(root)
        print(f"tests' serving model exported and pushed in {time.perf_counter() - started:.1f} s")
        results = {}
        print(f"\n{'request':<28} {'bytes':>9} {'loaded MB':>10} {'peak MB':>8} {'seconds':>8}  outcome")
        for name, images in requests():
            result = results[name] = measure(version_dir, images)
            print(f"{name:<28} {sum(map(len, images)):>9} {result['loaded'] / MB:10.0f} {result['peak'] / MB:8.0f} "
                  f"{result['seconds']:8.2f}  {result['outcome']}")
        ordinary, oversized = results[ORDINARY], results[OVERSIZED]
        print(f"\noversized against ordinary: peak {oversized['peak'] / MB:.0f} MB against "
              f"{ordinary['peak'] / MB:.0f} MB ({oversized['peak'] / ordinary['peak']:.2f}x, "
              f"{(oversized['peak'] - ordinary['peak']) / MB:+.0f} MB; the bound is +100 MB), "
              f"{oversized['seconds']:.2f} s against {ordinary['seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
