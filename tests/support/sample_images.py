"""Small images in the formats the Transform must read, made with PIL."""

import io

import numpy as np
from PIL import Image

# (format, PIL mode, (width, height)): sizes and channel layouts all differ.
MIXED = (
    ("JPEG", "RGB", (200, 120)),
    ("JPEG", "L", (90, 160)),
    ("PNG", "RGBA", (64, 48)),
    ("GIF", "P", (70, 70)),
    ("BMP", "RGB", (33, 47)),
)


def encode(fmt: str, mode: str, size: tuple[int, int], seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def mixed_images() -> list[bytes]:
    return [encode(fmt, mode, size, seed) for seed, (fmt, mode, size) in enumerate(MIXED)]


def jpeg(seed: int = 0, size: tuple[int, int] = (160, 120)) -> bytes:
    return encode("JPEG", "RGB", size, seed)
