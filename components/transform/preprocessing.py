"""Transform's preprocessing_fn: decode any common image format and resize it.

The transformed image is stored as a bytes feature holding the raw uint8 pixels
[size, size, 3] in row-major order: 1 byte per value (67.5 KB at 150x150) where float32
takes 4 and int64 in tf.Example 1-2 plus varint parsing, and `tf.io.decode_raw` turns a
batch of them back into pixels with one copy. `decode_transformed_images` is that inverse,
shared by the Trainer's input pipeline and the serving signatures.

`bounded_images` is the serving signatures' guard in front of the decode: it reads each image's
width and height from its header and refuses, before anything is decoded, a request holding an
image above a pixel limit (a 1 MB PNG can declare 20000x20000 pixels: 1.2 GB decoded).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import tensorflow as tf

from components import features

DEFAULT_IMAGE_SIZE = 150
CHANNELS = 3
# The setting that holds the serving signatures' limit (TrainerConfig.max_image_pixels).
MAX_IMAGE_PIXELS_SETTING = "trainer.max_image_pixels"

# The formats decode_image reads, told apart by the same leading bytes as its kernel
# (ClassifyFileFormat in tensorflow/core/kernels/image/decode_image_op.cc), in its order.
UNKNOWN, JPEG, PNG, GIF, BMP, WEBP, JXL = range(7)
FORMAT_NAMES = ("unknown", "JPEG", "PNG", "GIF", "BMP", "WebP", "JPEG XL")
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_GIF_MAGIC = b"GIF8"
_BMP_MAGIC = b"BM"
_JXL_CODESTREAM_MAGIC = b"\xff\x0a"
_JXL_CONTAINER_MAGIC = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
_HEADER_BYTES = 32  # every fixed-offset field read below lies in the first 30 bytes
_JXL_MAX_BOXES = 64  # ISO BMFF boxes of a JPEG XL container looked through for its codestream
_GIF_MAX_BLOCKS = 4096  # a GIF's frames and extensions walked; one with more is refused
# Why a header of each format may not tell the size, by FORMAT_NAMES index.
_UNREADABLE_REASONS = ("", "", "", f"more than {_GIF_MAX_BLOCKS} frames and extensions", "",
                       "its first chunk is none of VP8, VP8L, VP8X",
                       f"no jxlc or jxlp box among its first {_JXL_MAX_BOXES} boxes")
# JPEG XL's fixed aspect ratios (SizeHeader's ratio field 1..7: width = height * num // den).
_JXL_RATIOS = ((1, 1), (1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))
_UNREADABLE = -1
_DIMENSION_CAP = 1 << 31  # width and height above this count as this: their product fits int64


def preprocessing_fn(
    inputs: Mapping[str, tf.Tensor], custom_config: Optional[Mapping[str, Any]] = None
) -> dict[str, tf.Tensor]:
    """Raw image bytes -> resized raw uint8 pixels (bytes); the label passes through."""
    size = image_size(custom_config)
    outputs = {features.TRANSFORMED_IMAGE_KEY: encode_images(inputs[features.IMAGE_KEY], size)}
    if features.LABEL_KEY in inputs:
        outputs[features.TRANSFORMED_LABEL_KEY] = tf.reshape(inputs[features.LABEL_KEY], [-1])
    return outputs


def image_size(custom_config: Optional[Mapping[str, Any]]) -> int:
    return int((custom_config or {}).get("image_size") or DEFAULT_IMAGE_SIZE)


def encode_images(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """[batch] or [batch, 1] encoded images -> [batch] strings of size*size*3 raw bytes."""
    flat = tf.reshape(image_bytes, [-1])
    return tf.map_fn(
        lambda one: _raw_bytes(decode_and_resize(one, size)),
        flat,
        fn_output_signature=tf.TensorSpec([], tf.string),
    )


def decode_and_resize(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """One JPEG, PNG, GIF (first frame) or BMP -> uint8 [size, size, 3].

    Resizes like the recipe (bilinear, tf.image.resize), then rounds to uint8. Bytes that
    are no image fail with InvalidArgumentError.
    """
    image = tf.io.decode_image(image_bytes, channels=CHANNELS, expand_animations=False)
    resized = tf.image.resize(image, [size, size])
    return tf.saturate_cast(tf.round(resized), tf.uint8)


def decode_transformed_images(pixels: tf.Tensor, size: int) -> tf.Tensor:
    """[batch] raw-pixel strings (the transformed image) -> float32 [batch, size, size, 3]."""
    flat = tf.io.decode_raw(tf.reshape(pixels, [-1]), tf.uint8)
    return tf.cast(tf.reshape(flat, [-1, size, size, CHANNELS]), tf.float32)


def _raw_bytes(image: tf.Tensor) -> tf.Tensor:
    """The uint8 tensor's bytes without a header.

    A serialized TensorProto ends with its tensor_content field, the raw row-major values,
    so the last num_elements bytes are exactly the pixels.
    """
    num_bytes = tf.size(image)
    serialized = tf.io.serialize_tensor(image)
    return tf.strings.substr(serialized, tf.strings.length(serialized) - num_bytes, num_bytes)


def bounded_images(image_bytes: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """`image_bytes` unchanged, once no image in it would decode to more than `max_pixels`.

    Each image's width and height come from its header, not from decoding it (`image_sizes`).
    An image above the limit, or one whose header claims a format decode_image reads but
    whose dimensions cannot be read, fails the whole request with InvalidArgumentError naming
    the image's index, its size and the limit, as an undecodable image does; nothing in the
    request is decoded, since the returned tensor (which the decode reads) waits for the check.
    Bytes of no known format pass: decode_image refuses them with its own message.
    """
    sizes = image_sizes(image_bytes)
    height, width, pixels, fmt = sizes[:, 0], sizes[:, 1], sizes[:, 2], sizes[:, 3]
    refused = (pixels > max_pixels) | (pixels == _UNREADABLE)
    limit = f"the limit of {max_pixels} pixels per image ({MAX_IMAGE_PIXELS_SETTING})"

    def describe():  # the first refused image
        index = tf.argmax(tf.cast(refused, tf.int32), output_type=tf.int64)
        name = tf.gather(tf.constant(FORMAT_NAMES), fmt[index])
        number = tf.strings.as_string
        over = tf.strings.join([
            "image ", number(index), " (", name, " ", number(width[index]), "x", number(height[index]),
            ") would decode to ", number(pixels[index]), " pixels, above ", limit,
            "; the request was refused before decoding"])
        unreadable = tf.strings.join([
            "image ", number(index), " (", name, "): its size cannot be read from its headers (",
            tf.gather(tf.constant(_UNREADABLE_REASONS), fmt[index]), "), so it was not decoded (", limit, ")"])
        return tf.where(pixels[index] == _UNREADABLE, unreadable, over)

    check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(refused)), [tf.cond(
        tf.reduce_any(refused), describe, lambda: tf.constant(""))])
    with tf.control_dependencies([check]):
        return tf.identity(image_bytes)


def image_sizes(image_bytes: tf.Tensor) -> tf.Tensor:
    """[batch] (or any shape) encoded images -> int64 [batch, 4]: height, width, pixels, format.

    Read from the headers without decoding. `pixels` is what decode_image allocates for the
    image: height * width, for a GIF the pixels of all its frames (it decodes every frame, into
    an image as wide and as tall as its widest and tallest frames, whatever the header's
    screen size says), -1 when the header of a known format does not tell (the image is then
    refused), 0 for bytes of no known format (decode_image refuses them). `format` indexes
    FORMAT_NAMES. A JPEG whose header libjpeg cannot read fails here with InvalidArgumentError.
    """
    return _image_sizes(tf.reshape(image_bytes, [-1]))


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
def _image_sizes(images: tf.Tensor) -> tf.Tensor:
    """One function for every signature that checks sizes: a SavedModel stores it once."""
    return tf.map_fn(_image_size, images, fn_output_signature=tf.TensorSpec([4], tf.int64))


def _image_size(image: tf.Tensor) -> tf.Tensor:
    fmt = _format(image)
    padded = image + tf.constant(b"\x00" * _HEADER_BYTES)
    header = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 0, _HEADER_BYTES), tf.uint8), tf.int64)

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(image), tf.int64)
        return shape[0], shape[1]

    def png():
        return _uint(header, 20, 4, big_endian=True), _uint(header, 16, 4, big_endian=True)

    def bmp():  # int32 width and height; a negative height means rows stored top-down
        return tf.abs(_int32(header, 22)), tf.abs(_int32(header, 18))

    def known(branch):
        def sized():
            height, width = branch()
            height, width = tf.minimum(height, _DIMENSION_CAP), tf.minimum(width, _DIMENSION_CAP)
            return tf.stack([height, width, height * width])
        return sized

    branches = [
        lambda: tf.zeros([3], tf.int64),
        known(jpeg),
        known(png),
        lambda: _gif_size(image),
        known(bmp),
        lambda: _webp_size(header),
        lambda: _jxl_size(image),
    ]
    return tf.concat([tf.switch_case(tf.cast(fmt, tf.int32), branches), [fmt]], axis=0)


def _format(image: tf.Tensor) -> tf.Tensor:
    """The FORMAT_NAMES index of one encoded image, as decode_image classifies it."""
    def starts_with(magic: bytes) -> tf.Tensor:
        return tf.equal(tf.strings.substr(image, 0, len(magic)), magic)

    length = tf.strings.length(image)
    padded = image + tf.constant(b"\x00" * _HEADER_BYTES)
    riff_webp = (starts_with(b"RIFF") & (length > 12)
                 & tf.equal(tf.strings.substr(padded, 8, 4), b"WEBP"))
    jxl = starts_with(_JXL_CODESTREAM_MAGIC) | starts_with(_JXL_CONTAINER_MAGIC)
    checks = [(JPEG, starts_with(_JPEG_MAGIC)), (PNG, starts_with(_PNG_MAGIC)), (GIF, starts_with(_GIF_MAGIC)),
              (BMP, starts_with(_BMP_MAGIC)), (WEBP, riff_webp), (JXL, jxl)]
    fmt = tf.constant(UNKNOWN, tf.int64)
    for value, matches in reversed(checks):  # the first match wins, as in the kernel
        fmt = tf.where(matches, tf.constant(value, tf.int64), fmt)
    return fmt


def _uint(data: tf.Tensor, offset, size: int, big_endian: bool = False) -> tf.Tensor:
    """The unsigned integer of `size` bytes at `offset` in int64 bytes `data`."""
    value = tf.constant(0, tf.int64)
    for i in range(size):
        byte = tf.gather(data, offset + i)
        value += tf.bitwise.left_shift(byte, tf.constant(8 * ((size - 1 - i) if big_endian else i), tf.int64))
    return value


def _int32(data: tf.Tensor, offset: int) -> tf.Tensor:
    value = _uint(data, offset, 4)
    return tf.where(value >= 1 << 31, value - (1 << 32), value)


def _webp_size(header: tf.Tensor) -> tf.Tensor:
    """WebP's canvas (extended format, VP8X) or its one image's size (VP8 lossy, VP8L lossless)."""
    chunk = _uint(header, 12, 4, big_endian=True)  # the first chunk's FourCC

    def is_chunk(name: bytes) -> tf.Tensor:
        return tf.equal(chunk, int.from_bytes(name, "big"))

    lossless = _uint(header, 21, 4)
    choices = [
        (is_chunk(b"VP8X"), _uint(header, 27, 3) + 1, _uint(header, 24, 3) + 1),
        (is_chunk(b"VP8 "), tf.bitwise.bitwise_and(_uint(header, 28, 2), 0x3FFF),
         tf.bitwise.bitwise_and(_uint(header, 26, 2), 0x3FFF)),
        (is_chunk(b"VP8L"), tf.bitwise.bitwise_and(tf.bitwise.right_shift(lossless, 14), 0x3FFF) + 1,
         tf.bitwise.bitwise_and(lossless, 0x3FFF) + 1),
    ]
    height = width = tf.constant(_UNREADABLE, tf.int64)
    pixels = tf.constant(_UNREADABLE, tf.int64)
    for matches, chunk_height, chunk_width in choices:
        height = tf.where(matches, chunk_height, height)
        width = tf.where(matches, chunk_width, width)
        pixels = tf.where(matches, chunk_height * chunk_width, pixels)
    return tf.stack([height, width, pixels])


def _gif_size(image: tf.Tensor) -> tf.Tensor:
    """Walks a GIF's blocks: [height, width, pixels] of the frames decode_image decodes.

    TensorFlow's GIF decoder (giflib's DGifSlurp) decodes every frame's pixels, then makes an
    image as wide as the widest frame and as tall as the tallest; the screen size in the
    header plays no part. So the height and width are the tallest and widest frame's, and
    `pixels` the larger of height * width and all frames' pixels together; [-1, -1, -1] for a
    GIF of more than _GIF_MAX_BLOCKS blocks (extensions and frames), which is refused.

    Each block's data is a chain of sub-blocks (a length byte, then that many bytes) ended by a
    0; the chain ends are found for every position at once by pointer jumping (log2(bytes)
    gathers), so that the walk takes one step per block, not per sub-block.
    """
    length = tf.strings.length(image)
    data = tf.cast(tf.io.decode_raw(image + tf.constant(b"\x00" * 16), tf.uint8), tf.int32)
    last = length + 15  # the padding's zeros end every chain that the bytes leave open
    positions = tf.range(last + 1)
    chain_end = tf.where(data > 0, tf.minimum(positions + 1 + data, last), positions)

    def jump(_, ends):  # from every position: twice as many sub-blocks on; done when none moved
        further = tf.gather(ends, ends)
        return tf.reduce_any(tf.not_equal(further, ends)), further

    _, chain_end = tf.while_loop(lambda moved, _: moved, jump, (tf.constant(True), chain_end))

    def byte(position):
        return tf.gather(data, tf.minimum(position, last))

    def color_table(flags):  # 3 * 2^(N+1) bytes when the flags' top bit is set
        return tf.where(tf.bitwise.bitwise_and(flags, 0x80) > 0,
                        3 * tf.bitwise.left_shift(2, tf.bitwise.bitwise_and(flags, 7)), 0)

    def step(position, blocks, height, width, pixels):
        # At a block: 0x21 an extension (label, then its chain), 0x2C an image (descriptor, local
        # color table, LZW code size, then its chain); anything else ends what giflib reads.
        value = byte(position)
        is_image, is_extension = tf.equal(value, 0x2C), tf.equal(value, 0x21)
        chain = tf.where(is_image, position + 11 + color_table(byte(position + 9)), position + 2)
        next_position = tf.where(is_image | is_extension, tf.gather(chain_end, tf.minimum(chain, last)) + 1, length)
        frame_width = tf.cast(byte(position + 5) + 256 * byte(position + 6), tf.int64)
        frame_height = tf.cast(byte(position + 7) + 256 * byte(position + 8), tf.int64)
        return (next_position, blocks + 1,
                tf.where(is_image, tf.maximum(height, frame_height), height),
                tf.where(is_image, tf.maximum(width, frame_width), width),
                tf.where(is_image, pixels + frame_width * frame_height, pixels))

    start = 13 + color_table(byte(10))
    zero = tf.constant(0, tf.int64)
    position, _, height, width, frame_pixels = tf.while_loop(
        lambda position, blocks, *_: (position < length) & (blocks < _GIF_MAX_BLOCKS), step,
        (start, tf.constant(0), zero, zero, zero))
    sized = tf.stack([height, width, tf.maximum(height * width, frame_pixels)])
    return tf.where(position < length, tf.constant([_UNREADABLE] * 3, tf.int64), sized)


def _jxl_size(image: tf.Tensor) -> tf.Tensor:
    """JPEG XL: the SizeHeader at the start of the codestream, bare or in its container's first
    jxlc or jxlp box; [-1, -1, -1] when no codestream box is found among the first boxes."""
    length = tf.cast(tf.strings.length(image), tf.int64)
    data = tf.cast(tf.io.decode_raw(image + tf.constant(b"\x00" * 32), tf.uint8), tf.int64)

    def byte(position):
        return tf.gather(data, tf.clip_by_value(position, 0, length + 31))

    def box_type(position):
        return _uint(data, tf.minimum(position + 4, length), 4, big_endian=True)

    jxlc, jxlp = (int.from_bytes(name, "big") for name in (b"jxlc", b"jxlp"))

    def next_box(position, found, count):
        size = _uint(data, tf.minimum(position, length), 4, big_endian=True)
        large = _uint(data, tf.minimum(position + 8, length), 8, big_endian=True)
        kind = box_type(position)
        header = tf.where(tf.equal(size, 1), tf.constant(16, tf.int64), tf.constant(8, tf.int64))
        is_codestream = tf.equal(kind, jxlc) | tf.equal(kind, jxlp)
        payload = position + header + tf.where(tf.equal(kind, jxlp), tf.constant(4, tf.int64), tf.constant(0, tf.int64))
        box_end = tf.where(tf.equal(size, 1), position + large, tf.where(tf.equal(size, 0), length, position + size))
        bad = box_end <= position  # a box too small for its own header: nothing further can be read
        return (tf.where(is_codestream, payload, tf.where(bad, length, box_end)),
                is_codestream, count + 1)

    def container_start():
        position, found, _ = tf.while_loop(
            lambda position, found, count: ~found & (position < length) & (count < _JXL_MAX_BOXES),
            next_box, (tf.constant(0, tf.int64), tf.constant(False), tf.constant(0, tf.int64)))
        return tf.where(found, position, tf.constant(_UNREADABLE, tf.int64))

    bare = tf.equal(tf.strings.substr(image, 0, 2), _JXL_CODESTREAM_MAGIC)
    start = tf.cond(bare, lambda: tf.constant(0, tf.int64), container_start)
    # The codestream: 0xFF 0x0A, then SizeHeader, at most 68 bits read least significant first:
    # bits 0-63 in `word`, 64-71 in `extra`.
    word = tf.bitwise.bitwise_or(tf.constant(0, tf.uint64), tf.add_n([
        tf.bitwise.left_shift(tf.cast(byte(start + 2 + i), tf.uint64), tf.constant(8 * i, tf.uint64))
        for i in range(8)]))
    extra = tf.cast(byte(start + 10), tf.uint64)

    def read(position, count):  # `count` bits from bit `position` (int64 tensors both, position < 64)
        shift = tf.cast(position, tf.uint64)
        high = tf.bitwise.left_shift(extra, tf.cast(tf.maximum(64 - position, 1), tf.uint64))
        bits = tf.bitwise.bitwise_or(tf.bitwise.right_shift(word, shift),
                                     tf.where(position > 0, high, tf.constant(0, tf.uint64)))
        mask = tf.bitwise.left_shift(tf.constant(1, tf.uint64), tf.cast(count, tf.uint64)) - 1
        return tf.cast(tf.bitwise.bitwise_and(bits, mask), tf.int64), position + count

    def size_u32(position):  # U32(BitsOffset(9, 1), BitsOffset(13, 1), BitsOffset(18, 1), BitsOffset(30, 1))
        selector, position = read(position, tf.constant(2, tf.int64))
        count = tf.gather(tf.constant([9, 13, 18, 30], tf.int64), selector)
        value, position = read(position, count)
        return value + 1, position

    small, position = read(tf.constant(0, tf.int64), tf.constant(1, tf.int64))
    small = tf.equal(small, 1)
    small_height, after_small = read(position, tf.constant(5, tf.int64))
    large_height, after_large = size_u32(position)
    height = tf.where(small, (small_height + 1) * 8, large_height)
    position = tf.where(small, after_small, after_large)
    ratio, position = read(position, tf.constant(3, tf.int64))
    small_width, _ = read(position, tf.constant(5, tf.int64))
    large_width, _ = size_u32(position)
    numerator = tf.gather(tf.constant([r[0] for r in _JXL_RATIOS], tf.int64), ratio)
    denominator = tf.gather(tf.constant([r[1] for r in _JXL_RATIOS], tf.int64), ratio)
    width = tf.where(tf.equal(ratio, 0), tf.where(small, (small_width + 1) * 8, large_width),
                     height * numerator // denominator)
    readable = start >= 0
    return tf.where(readable, tf.stack([height, width, height * width]), tf.constant([_UNREADABLE] * 3, tf.int64))
