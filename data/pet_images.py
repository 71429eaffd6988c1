"""Procedural stand-ins for the cats-vs-dogs photos.

The classes differ in local shape and texture statistics, not in colour: cats are covered
in round spots and rings, dogs in straight stripes and angular shapes. Both are drawn in
random colours, at random scales and positions, over noisy gradient backgrounds, with some
clutter of the other class's kind, so a model has to learn shapes rather than a shortcut.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

CAT, DOG = 0, 1
MIN_SIDE, MAX_SIDE = 100, 500
_REFERENCE_AREA = 300 * 250


def random_size(rng: np.random.Generator, min_side: int = MIN_SIDE, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """A (width, height) with a photo-like aspect ratio, both sides within the bounds."""
    long_side = int(rng.integers(max(min_side, int(max_side * 0.45)), max_side + 1))
    short_side = int(np.clip(long_side * rng.uniform(0.55, 1.0), min_side, max_side))
    return (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)


def draw_pet(rng: np.random.Generator, label: int, size: tuple[int, int]) -> Image.Image:
    """An RGB image of class `label` (CAT or DOG) of the given (width, height)."""
    image = _noisy_gradient(rng, size)
    draw = ImageDraw.Draw(image)
    area = size[0] * size[1] / _REFERENCE_AREA  # shape counts scale with the area
    if label == CAT:
        _draw_angular(rng, draw, size, count=int(area * rng.integers(0, 3)))
        _draw_spots(rng, draw, size, count=max(8, int(area * rng.integers(60, 150))))
    else:
        _draw_spots(rng, draw, size, count=int(area * rng.integers(0, 5)))
        _draw_angular(rng, draw, size, count=max(8, int(area * rng.integers(30, 70))))
    return _add_noise(rng, image, sigma=rng.uniform(4, 12))


def encode_jpeg(image: Image.Image, rng: np.random.Generator) -> bytes:
    """JFIF JPEG bytes, as PIL writes them (an APP0 JFIF segment right after SOI)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(70, 96)))
    return buffer.getvalue()


def _random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(rng.integers(0, 256, size=3).tolist())


def _random_colours(rng: np.random.Generator, count: int) -> list[tuple[int, int, int]]:
    return [tuple(colour) for colour in rng.integers(0, 256, size=(count, 3)).tolist()]


def _noisy_gradient(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    width, height = size
    start, end = (np.array(_random_colour(rng), dtype=np.float32) for _ in range(2))
    angle = rng.uniform(0, np.pi)
    xs = np.linspace(0, np.cos(angle), width, dtype=np.float32)
    ys = np.linspace(0, np.sin(angle), height, dtype=np.float32)
    t = ys[:, None] + xs[None, :]
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    pixels = start + t[..., None] * (end - start)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _add_noise(rng: np.random.Generator, image: Image.Image, sigma: float) -> Image.Image:
    pixels = np.asarray(image, dtype=np.int16)
    noise = (rng.standard_normal(size=pixels.shape[:2] + (1,), dtype=np.float32) * sigma).astype(np.int16)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def _draw_spots(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: tuple[int, int], count: int) -> None:
    """Round blobs and rings, nearly circular."""
    width, height = size
    scale = min(size) * rng.uniform(0.03, 0.07)
    for colour in _random_colours(rng, count):
        radius = scale * rng.uniform(0.6, 1.6)
        rx, ry = radius, radius * rng.uniform(0.8, 1.2)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        box = (cx - rx, cy - ry, cx + rx, cy + ry)
        if rng.random() < 0.7:
            draw.ellipse(box, fill=colour)
        else:
            draw.ellipse(box, outline=colour, width=max(2, int(radius / 3)))


def _draw_angular(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: tuple[int, int], count: int) -> None:
    """Straight stripes sharing a dominant orientation, and triangles."""
    width, height = size
    scale = min(size) * rng.uniform(0.05, 0.15)
    orientation = rng.uniform(0, np.pi)
    for colour in _random_colours(rng, count):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if rng.random() < 0.65:
            angle = orientation + rng.normal(0, 0.2)
            half = scale * rng.uniform(1.0, 3.0)
            dx, dy = half * np.cos(angle), half * np.sin(angle)
            line_width = max(2, int(scale * rng.uniform(0.25, 0.5)))
            draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=colour, width=line_width)
        else:
            angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2.1, 4.2]) + rng.normal(0, 0.2, 3)
            radius = scale * rng.uniform(0.6, 1.4)
            points = [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in angles]
            draw.polygon(points, fill=colour)
