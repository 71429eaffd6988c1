"""`python -m pipeline check-serving MODEL_DIR`: runs a pushed model as TF Serving would.

Every request goes through TensorFlow's C++ SavedModel loader in a process of its own
(`components.serving.c_loader`, the loader TF Serving uses) and, for comparison, through Python's
object loader (`tf.saved_model.load`, what TFMA uses): every signature, images of every
format TF Serving's clients send and of extreme sizes, a batch of 32, an undecodable image
(INVALID_ARGUMENT, then the process must keep serving), tf.Examples, and every request of the
model's warm-up file, which TF Serving replays before it serves a version. An image far above
the served model's pixel limit (trainer.max_image_pixels), sent to `serving_default` and inside
a tf.Example to `from_examples`, must be refused with INVALID_ARGUMENT naming the limit.

"""

from __future__ import annotations

import dataclasses
import io
import struct
import time
import zlib
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from components import features
from components.example_gen.examples import serialized_example
from components.transform import preprocessing
from components.serving import c_loader, warmup
from components.serving import requests as infra_requests

# Probabilities and logits of the two loaders agree within this.
TOLERANCE = 1e-5
INVALID_ARGUMENT = 3
SERVING_SIGNATURE = features.SERVING_SIGNATURE
TRANSFORM_FEATURES_SIGNATURE = features.TRANSFORM_FEATURES_SIGNATURE
EXAMPLES_INPUT_KEY = features.EXAMPLES_INPUT_KEY
# (format, width, height): every format decode_image reads, and the extremes of size.
IMAGE_FORMATS = (("JPEG", 320, 240), ("PNG", 1, 1), ("GIF", 200, 150), ("BMP", 97, 61),
                 ("JPEG", 4000, 3000), ("PNG", 240, 320), ("JPEG", 1, 1))
# Above any pixel limit the settings allow (trainer.max_image_pixels: at most 250 megapixels).
OVERSIZED = (20000, 20000)
LIMIT_SETTING = preprocessing.MAX_IMAGE_PIXELS_SETTING


@dataclasses.dataclass
class Request:
    """One call of a signature, with the status TF Serving must answer it with."""
    name: str
    signature: str
    inputs: dict[str, list[bytes]]
    expect_code: int = 0  # TF_Code: 0 OK, 3 INVALID_ARGUMENT
    expect_message: str = ""  # with an error code: what the error's message must say


@dataclasses.dataclass
class Outcome:
    request: Request
    passed: bool
    detail: str
    seconds: float


def image(fmt: str, width: int, height: int, seed: int = 0) -> bytes:
    """A deterministic picture (gradients and stripes) encoded in `fmt` by Pillow."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                       ((x + y + seed) // 7 % 2) * 200], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def blank_png(width: int, height: int) -> bytes:
    """An RGB PNG of `width` x `height` black pixels, built without holding its pixels.

    Its zlib stream repeats one deflate block of 1 MiB of zeros, compressed once and ended
    with a full flush (so that it refers to nothing before it): a 20000x20000 PNG is 1.2 MB
    and takes milliseconds, while its pixels decode to 1.2 GB.
    """
    raw_size = height * (1 + 3 * width)  # per row: filter type 0, then RGB bytes, all zero
    piece = 1 << 20
    repeated = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = repeated.compress(bytes(piece)) + repeated.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(raw_size, piece)
    final = zlib.compressobj(9, zlib.DEFLATED, -15)
    last = final.compress(bytes(rest)) + final.flush(zlib.Z_FINISH)
    adler32 = ((raw_size % 65521) << 16) | 1  # of zeros: a stays 1, b counts the bytes
    stream = b"\x78\xda" + block * count + last + struct.pack(">I", adler32)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    chunks = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", stream) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def standard_requests(export_dir: str) -> list[Request]:
    mixed = [image(fmt, width, height, seed) for seed, (fmt, width, height) in enumerate(IMAGE_FORMATS)]
    formats = ", ".join(f"{fmt} {width}x{height}" for fmt, width, height in IMAGE_FORMATS)
    batch = warmup.pattern_jpegs(32)
    examples = [serialized_example(data, label, f"{i}.jpg".encode()) for i, (data, label) in
                enumerate(zip(batch[:6], [0, 1] * 3))]
    oversized = blank_png(*OVERSIZED)
    oversized_name = f"{OVERSIZED[0]}x{OVERSIZED[1]} PNG ({len(oversized) / 1e6:.1f} MB)"
    requests = [
        Request(f"images in one batch: {formats}", SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: mixed}),
        Request("a batch of 32 JPEGs", SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: batch}),
        Request("an undecodable image", SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: [b"not an image"]},
                expect_code=INVALID_ARGUMENT),
        Request(f"a JPEG and a {oversized_name}", SERVING_SIGNATURE,
                {features.SERVING_INPUT_KEY: [batch[0], oversized]},
                expect_code=INVALID_ARGUMENT, expect_message=LIMIT_SETTING),
        Request(f"a tf.Example holding a {oversized_name}", features.EXAMPLES_SIGNATURE,
                {EXAMPLES_INPUT_KEY: [serialized_example(oversized, 0, b"big.png")]},
                expect_code=INVALID_ARGUMENT, expect_message=LIMIT_SETTING),
        Request("the next request after the error", SERVING_SIGNATURE, {features.SERVING_INPUT_KEY: batch[:1]}),
        Request("tf.Examples", features.EXAMPLES_SIGNATURE, {EXAMPLES_INPUT_KEY: examples}),
        Request("tf.Examples", TRANSFORM_FEATURES_SIGNATURE, {EXAMPLES_INPUT_KEY: examples[:2]}),
    ]
    return requests + warmup_requests(export_dir)


def warmup_requests(export_dir: str) -> list[Request]:
    """Every request of the model's warm-up file, as TF Serving replays them."""
    return [Request(call.name, call.signature, call.inputs) for call in infra_requests.warmup_calls(export_dir)]


def check(export_dir: str, requests: Optional[Sequence[Request]] = None,
          on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Runs `requests` (default: standard_requests) through both loaders; one Outcome each.

    Raises c_loader.CLoaderError when the C loader cannot be built or the model does not load.
    """
    requests = list(standard_requests(export_dir) if requests is None else requests)
    python_model = tf.saved_model.load(export_dir)
    outcomes = []
    with c_loader.CSavedModel(export_dir) as c_model:
        for request in requests:
            started = time.perf_counter()
            passed, detail = _check_one(c_model, python_model, request)
            outcome = Outcome(request, passed, detail, time.perf_counter() - started)
            on_outcome(outcome)
            outcomes.append(outcome)
    return outcomes


def _check_one(c_model: c_loader.CSavedModel, python_model, request: Request) -> tuple[bool, str]:
    try:
        c_outputs = c_model.run(request.signature, request.inputs)
    except c_loader.RequestError as error:
        if error.code == request.expect_code and request.expect_message in error.message:
            return True, f"{error.code_name}, as TF Serving answers it"
        if error.code == request.expect_code:
            return False, f"C loader: {error.code_name} without {request.expect_message!r}: {error.message[:300]}"
        return False, f"C loader: {error}"
    except KeyError as error:
        return False, str(error)
    if request.expect_code:
        return False, f"C loader answered OK, expected {c_loader.CODE_NAMES[request.expect_code]}"
    signature = python_model.signatures[request.signature]
    python_outputs = {key: value.numpy() for key, value in
                      signature(**{key: tf.constant(values, tf.string) for key, values in request.inputs.items()}).items()}
    return _compare(c_outputs, python_outputs)


def _compare(c_outputs: dict, python_outputs: dict) -> tuple[bool, str]:
    if set(c_outputs) != set(python_outputs):
        return False, f"outputs {sorted(c_outputs)} from the C loader, {sorted(python_outputs)} from Python"
    worst = 0.0
    for key, expected in python_outputs.items():
        actual = c_outputs[key]
        if actual.shape != expected.shape:
            return False, f"{key}: shape {actual.shape} from the C loader, {expected.shape} from Python"
        if expected.dtype == object:
            if list(actual.reshape(-1)) != [bytes(v) for v in expected.reshape(-1)]:
                return False, f"{key}: values differ between the loaders"
            continue
        difference = float(np.max(np.abs(actual.astype(np.float64) - expected))) if expected.size else 0.0
        if not difference <= TOLERANCE:
            return False, f"{key}: differs by {difference:.3g} between the loaders (tolerance {TOLERANCE})"
        worst = max(worst, difference)
    outputs = ", ".join(f"{key} {tuple(value.shape)}" for key, value in sorted(c_outputs.items()))
    return True, f"{outputs}; equal to Python's loader within {worst:.1g}"
