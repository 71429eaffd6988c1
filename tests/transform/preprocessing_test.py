"""preprocessing_fn through tft_beam, and the helpers it shares with serving."""

import io
import struct

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from PIL import Image

from support import sample_images
from components import features
from components.serving import tfrecords
from components.transform import preprocessing, standalone

SIZE = 40


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """The mixed images and their labels after a real tft_beam Analyze+Transform run."""
    tmp = tmp_path_factory.mktemp("transform")
    images = sample_images.mixed_images()
    labels = [i % 2 for i in range(len(images))]
    graph_dir, pattern = standalone.transform_images(images, labels, str(tmp), SIZE)
    return graph_dir, pattern, images, labels


def _read_transformed(pattern):
    spec = {
        features.TRANSFORMED_IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        features.TRANSFORMED_LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
    files = tf.io.gfile.glob(pattern)
    records = list(tfrecords.dataset(files).as_numpy_iterator())
    return tf.io.parse_example(records, spec)


def test_mixed_formats_come_out_at_the_configured_size_in_byte_range(transformed):
    _, pattern, images, labels = transformed

    parsed = _read_transformed(pattern)
    pixels = preprocessing.decode_transformed_images(parsed[features.TRANSFORMED_IMAGE_KEY], SIZE).numpy()

    assert pixels.shape == (len(images), SIZE, SIZE, 3)
    assert pixels.dtype == np.float32
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert np.array_equal(pixels, np.round(pixels))
    assert pixels.max() > 200  # the random images use the full range; nothing was rescaled
    assert sorted(parsed[features.TRANSFORMED_LABEL_KEY].numpy().tolist()) == sorted(labels)


def test_transformed_pixels_match_decoding_and_resizing_each_image(transformed):
    _, pattern, images, _ = transformed

    parsed = _read_transformed(pattern)
    pixels = preprocessing.decode_transformed_images(parsed[features.TRANSFORMED_IMAGE_KEY], SIZE).numpy()

    expected = {preprocessing.decode_and_resize(image, SIZE).numpy().tobytes() for image in images}
    assert {p.astype(np.uint8).tobytes() for p in pixels} == expected


def test_transform_graph_records_the_transformed_schema(transformed):
    graph_dir, _, _, _ = transformed
    spec = tft.TFTransformOutput(graph_dir).transformed_feature_spec()

    assert spec == {
        features.TRANSFORMED_IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        features.TRANSFORMED_LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }


def test_image_size_defaults_to_the_recipe_size():
    assert preprocessing.image_size(None) == 150
    assert preprocessing.image_size({"image_size": 96}) == 96


def test_rank_two_image_input_and_missing_label_are_accepted():
    image = sample_images.jpeg()

    outputs = preprocessing.preprocessing_fn({features.IMAGE_KEY: tf.constant([[image], [image]])}, {"image_size": 8})

    assert list(outputs) == [features.TRANSFORMED_IMAGE_KEY]
    assert tf.strings.length(outputs[features.TRANSFORMED_IMAGE_KEY]).numpy().tolist() == [8 * 8 * 3] * 2


def test_bytes_that_are_no_image_fail_with_invalid_argument():
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocessing.encode_images(tf.constant([b"not an image"]), 8)


# --- Image sizes read from headers (the serving signatures' bound, components/trainer/export.py) ---

def _encode(fmt, size, mode="RGB", **options):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _gif_blocks(data):
    """(header bytes, [frame bytes]) of a GIF: its blocks from the first image descriptor on."""
    position = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    header_end, frames = None, []
    while data[position] != 0x3B:
        start = position
        if data[position] == 0x2C:
            flags = data[position + 9]
            position += 11 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
        else:
            position += 2
        while data[position]:
            position += data[position] + 1
        position += 1
        if data[start] == 0x2C:
            header_end = start if header_end is None else header_end
            frames.append(data[start:position])
    return data[:header_end], frames


def gif_of_frames(screen, frame_sizes):
    """A GIF whose logical screen is `screen` and whose frames (all at 0, 0) have other sizes."""
    header, _ = _gif_blocks(_encode("GIF", frame_sizes[0], "P"))
    header = header[:6] + struct.pack("<HH", *screen) + header[10:]
    frames = b"".join(_gif_blocks(_encode("GIF", size, "P"))[1][0] for size in frame_sizes)
    return header + frames + b";"


_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def jxl_codestream(width, height):
    """A JPEG XL codestream's start: signature and SizeHeader, encoded as libjxl encodes it
    (checked bit for bit against libjxl's own output), then filler: no decodable image."""
    ratio = next((r for r, (num, den) in _JXL_RATIOS.items() if width == height * num // den), 0)
    small = height <= 256 and height % 8 == 0 and (ratio != 0 or (width <= 256 and width % 8 == 0))

    def u32(value):  # U32(BitsOffset(9, 1), BitsOffset(13, 1), BitsOffset(18, 1), BitsOffset(30, 1))
        selector = next(i for i, bits in enumerate((9, 13, 18, 30)) if value - 1 < 1 << bits)
        return [(selector, 2), (value - 1, (9, 13, 18, 30)[selector])]

    fields = [(int(small), 1)] + ([(height // 8 - 1, 5)] if small else u32(height)) + [(ratio, 3)]
    if ratio == 0:
        fields += [(width // 8 - 1, 5)] if small else u32(width)
    value = bits = 0
    for field, count in fields:
        value, bits = value | field << bits, bits + count
    return b"\xff\x0a" + value.to_bytes(9, "little") + bytes(32)


def jxl_container(codestream, box=b"jxlc", before=b""):
    """The ISO BMFF container form: signature box, ftyp, `before` boxes, then the codestream box."""
    def make_box(kind, payload):
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    payload = (b"\x00\x00\x00\x00" if box == b"jxlp" else b"") + codestream
    return (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + make_box(b"ftyp", b"jxl \x00\x00\x00\x00jxl ")
            + before + make_box(box, payload))


def _bmp_top_down(size):
    data = bytearray(_encode("BMP", size))
    data[22:26] = struct.pack("<i", -size[1])  # rows stored top-down: a negative height
    return bytes(data)


P = preprocessing
DECODABLE = {  # name: (bytes, format, frames)
    "JPEG": (_encode("JPEG", (321, 123)), P.JPEG, 1),
    "grey JPEG": (_encode("JPEG", (64, 48), "L"), P.JPEG, 1),
    "progressive JPEG": (_encode("JPEG", (200, 100), progressive=True), P.JPEG, 1),
    "PNG": (_encode("PNG", (77, 55)), P.PNG, 1),
    "16-bit PNG": (_encode("PNG", (40, 30), "I;16"), P.PNG, 1),
    "GIF": (_encode("GIF", (70, 90), "P"), P.GIF, 1),
    "animated GIF": (gif_of_frames((40, 30), [(40, 30)] * 3), P.GIF, 3),
    "BMP": (_encode("BMP", (33, 47)), P.BMP, 1),
    "top-down BMP": (_bmp_top_down((31, 29)), P.BMP, 1),
    "lossy WebP": (_encode("WEBP", (150, 99), quality=80), P.WEBP, 1),
    "lossless WebP": (_encode("WEBP", (123, 45), lossless=True), P.WEBP, 1),
}


@pytest.mark.parametrize("name", sorted(DECODABLE))
def test_header_sizes_are_the_decoded_sizes(name):
    data, expected_format, frames = DECODABLE[name]

    height, width, pixels, fmt = preprocessing.image_sizes(tf.constant([data]))[0].numpy().tolist()

    assert (height, width) == tuple(tf.io.decode_image(data, channels=3, expand_animations=False).shape[:2])
    assert fmt == expected_format and pixels == frames * height * width


def test_a_gif_counts_every_frames_pixels_and_takes_its_widest_and_tallest():
    sizes = preprocessing.image_sizes(tf.constant([
        gif_of_frames((1, 1), [(300, 1), (1, 200)]), gif_of_frames((40, 30), [(40, 30)] * 3)])).numpy()

    assert sizes[0].tolist()[:3] == [200, 300, 200 * 300]  # decoded as 200x300 from 1 KB
    assert sizes[1].tolist()[:3] == [30, 40, 3 * 40 * 30]  # decode_image decodes all three frames


@pytest.mark.parametrize("width, height", [(8, 8), (640, 480), (1920, 1080), (7, 13), (9000, 8), (20000, 20000),
                                           (300000, 200000), (1 << 30, 3), (5, 1 << 30)])
def test_jpeg_xl_size_header_in_a_bare_codestream_and_in_containers(width, height):
    codestream = jxl_codestream(width, height)
    exif = b"\x00\x00\x01\x08Exif" + bytes(256)
    images = [codestream, jxl_container(codestream), jxl_container(codestream, b"jxlp", before=exif)]

    sizes = preprocessing.image_sizes(tf.constant(images)).numpy()

    assert sizes.tolist() == [[height, width, height * width, preprocessing.JXL]] * 3


def test_unknown_bytes_have_no_size_and_a_jxl_container_without_codestream_none_readable():
    no_codestream = jxl_container(b"", box=b"jxll")[:-8] + b"\x00\x00\x00\x09jxll\x05"

    sizes = preprocessing.image_sizes(tf.constant([b"not an image", b"", no_codestream])).numpy()

    assert sizes[:, :3].tolist() == [[0, 0, 0], [0, 0, 0], [-1, -1, -1]]


def test_bounded_images_refuses_the_first_image_above_the_limit_naming_it_and_the_limit():
    images = [_encode("JPEG", (100, 100)), _encode("PNG", (1001, 1000)), _encode("PNG", (2000, 2000))]
    check = tf.function(lambda batch: preprocessing.bounded_images(batch, 1_000_000), autograph=False)

    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        check(tf.constant(images))
    assert check(tf.constant([images[0], _encode("PNG", (1000, 1000))])).shape == (2,)  # at the limit

    assert ("image 1 (PNG 1001x1000) would decode to 1001000 pixels, above the limit of 1000000 pixels per "
            "image (trainer.max_image_pixels)") in error.value.message


def test_bounded_images_refuses_what_it_cannot_size():
    no_codestream = jxl_container(b"", box=b"jxll")[:-8] + b"\x00\x00\x00\x09jxll\x05"
    one_frame = _gif_blocks(_encode("GIF", (1, 1), "P"))
    many_frames = one_frame[0] + one_frame[1][0] * 5000 + b";"  # 5000 blocks of 1x1 frames

    for image, expected in ((no_codestream, r"image 0 \(JPEG XL\): its size cannot be read from its headers "
                                            r"\(no jxlc or jxlp box among its first 64 boxes\)"),
                            (many_frames, r"image 0 \(GIF\): its size cannot be read from its headers "
                                          r"\(more than 4096 frames and extensions\)")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
            preprocessing.bounded_images(tf.constant([image]), 40_000_000)
