"""A photo in, labels at the photo's size out: the mapping around the network, in TF ops.

A photo enters the network the way ``prepare`` put training photos in: the same
content box (``facepars.core.imaging.Geometry``: stretched to the square, or
scaled to fit and padded with black), an antialiased bilinear resize. The logits
come back the inverse way: the content box cropped, resized bilinearly to the
photo's size, the argmax taken there (never a nearest resize of labels).

Written once, in TensorFlow ops, and used by everything that serves a model:
the SavedModel's signatures (facepars.export), ``Predictor`` over a Keras,
SavedModel or TFLite network, and evaluation at original resolution. So the
exported graph and the Python API give the same probabilities, not merely the
same argmax. Prepare resizes with Pillow, whose antialiasing is the same
triangle filter but rounds to uint8 between passes: the network inputs differ by
at most a few levels (tests/inference/test_serving.py measures it).
"""

from __future__ import annotations

import tensorflow as tf

from facepars.models import to_model_input


def content_box(height, width, size: int, resize: str):
    """(top, left, h, w) of a (height, width) photo in the size x size input, as tensors.

    Geometry.content_box in graph ops; float64 so that the rounding is Python's
    (both round half to even) for every photo size. Host-side only: this runs
    around the network, never inside a training step.
    """
    if resize == "stretch":
        return tf.constant(0), tf.constant(0), tf.constant(size), tf.constant(size)
    h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    scale = size / tf.maximum(h, w)
    nh = tf.maximum(1, tf.cast(tf.round(h * scale), tf.int32))
    nw = tf.maximum(1, tf.cast(tf.round(w * scale), tf.int32))
    return (size - nh) // 2, (size - nw) // 2, nh, nw


def network_input(images: tf.Tensor, size: int, resize: str):
    """uint8 photos (B, H, W, 3) -> model input (B, size, size, 3) in [0, 1], and the box."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    top, left, h, w = box = content_box(height, width, size, resize)
    x = tf.image.resize(tf.cast(images, tf.float32), tf.stack([h, w]), antialias=True)
    x = tf.round(tf.clip_by_value(x, 0.0, 255.0))  # whole levels, as stored training images
    return to_model_input(tf.image.pad_to_bounding_box(x, top, left, size, size)), box


def photo_logits(logits: tf.Tensor, box, height, width) -> tf.Tensor:
    """Network logits (B, S, S, C) -> float32 logits at the photo's (B, height, width, C)."""
    top, left, h, w = box
    content = tf.cast(logits, tf.float32)[:, top:top + h, left:left + w]
    return tf.image.resize(content, tf.stack([height, width]), method="bilinear")


def parse(logits_fn, images: tf.Tensor, size: int, resize: str) -> dict[str, tf.Tensor]:
    """uint8 photos (B, H, W, 3) -> ``labels`` uint8 (B, H, W), ``probabilities`` (B, H, W, C).

    ``logits_fn`` maps the (B, size, size, 3) [0, 1] input to logits: a Keras
    network, a SavedModel signature or a TFLite interpreter.
    """
    x, box = network_input(images, size, resize)
    logits = photo_logits(logits_fn(x), box, tf.shape(images)[1], tf.shape(images)[2])
    return {"labels": tf.cast(tf.argmax(logits, -1), tf.uint8),
            "probabilities": tf.nn.softmax(logits)}


# EXIF orientation (tag 0x0112) -> how to bring the stored pixels upright, as
# Pillow's ImageOps.exif_transpose does (what predict applies to a user's photo).
_ORIENTATION_TAG = 0x0112


def _uint(raw: tf.Tensor, n: int, little: tf.Tensor) -> tf.Tensor:
    """Unsigned integer of the ``n`` bytes ``raw`` (uint8, last axis), either byte order."""
    raw = tf.cast(raw, tf.int64)
    weights_le = tf.constant([256 ** i for i in range(n)], tf.int64)
    return tf.where(little, tf.reduce_sum(raw * weights_le, -1),
                    tf.reduce_sum(raw * weights_le[::-1], -1))


def exif_orientation(data: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation (1-8) of JPEG or PNG bytes, 1 when there is none, in graph ops.

    Reads the TIFF header and IFD0 entries of JPEG's APP1 "Exif" segment or PNG's
    eXIf chunk (the formats whose EXIF Pillow, and so ``predict``, applies);
    anything malformed counts as no orientation, as a photo viewer would show it.
    """
    head = tf.strings.substr(data, 0, 65536)

    def after(marker: str) -> tf.Tensor:
        parts = tf.strings.split(head, sep=marker, maxsplit=1)
        return tf.cond(tf.size(parts) > 1, lambda: parts[-1], lambda: tf.constant(b""))

    is_png = tf.equal(tf.strings.substr(head, 0, 8), b"\x89PNG\r\n\x1a\n")
    tiff = tf.cond(is_png, lambda: after("eXIf"), lambda: after("Exif\x00\x00"))
    # Some writers keep JPEG's "Exif\0\0" prefix inside the PNG chunk too.
    tiff = tf.cond(tf.equal(tf.strings.substr(tiff, 0, 6), b"Exif\x00\x00"),
                   lambda: tf.strings.substr(tiff, 6, -1), lambda: tiff)
    raw = tf.io.decode_raw(tf.strings.substr(tiff, 0, 8) + tf.constant(b"\x00" * 8), tf.uint8)
    little = tf.reduce_all(tf.equal(raw[:2], [73, 73]))  # "II": Intel byte order
    valid = little | tf.reduce_all(tf.equal(raw[:2], [77, 77]))  # or "MM"
    end = tf.strings.length(tiff)  # substr refuses a start past the end
    ifd = tf.cast(tf.minimum(_uint(raw[4:8], 4, little), tf.cast(end, tf.int64)), tf.int32)
    count_raw = tf.io.decode_raw(tf.strings.substr(tiff, ifd, 2) + tf.constant(b"\x00\x00"),
                                 tf.uint8)[:2]
    count = tf.minimum(tf.cast(_uint(count_raw, 2, little), tf.int32), 256)
    table = tf.strings.substr(tiff, tf.minimum(ifd + 2, end), count * 12)
    entries = tf.io.decode_raw(table + tf.constant(b"\x00" * 12), tf.uint8)
    entries = tf.reshape(entries[:tf.size(entries) // 12 * 12], [-1, 12])[:count]
    tags = _uint(entries[:, 0:2], 2, little)
    values = _uint(entries[:, 8:10], 2, little)
    found = tf.boolean_mask(values, tf.equal(tags, _ORIENTATION_TAG))
    orientation = tf.cond(valid & (tf.size(found) > 0), lambda: found[0],
                          lambda: tf.constant(1, tf.int64))
    return tf.cast(tf.where((orientation >= 1) & (orientation <= 8), orientation, 1), tf.int32)


def upright(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """(H, W, 3) stored pixels turned upright for an EXIF orientation 1-8."""
    def transpose(x):
        return tf.transpose(x, [1, 0, 2])

    return tf.switch_case(orientation - 1, [
        lambda: image,
        lambda: tf.reverse(image, [1]),                  # 2: mirrored left-right
        lambda: tf.reverse(image, [0, 1]),               # 3: rotated 180
        lambda: tf.reverse(image, [0]),                  # 4: mirrored top-bottom
        lambda: transpose(image),                        # 5: transposed
        lambda: tf.image.rot90(image, 3),                # 6: rotated 90 clockwise
        lambda: tf.image.rot90(transpose(image), 2),     # 7: transversed
        lambda: tf.image.rot90(image, 1),                # 8: rotated 90 counter-clockwise
    ])


def decode_photo(data: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG, PNG, BMP or GIF (first frame) bytes -> upright uint8 (H, W, 3).

    JPEG with the accurate integer DCT, as Pillow (predict's reader) decodes it:
    TensorFlow's default fast DCT differs from it by up to 10 levels.
    """
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
    image = tf.ensure_shape(image, [None, None, 3])
    return upright(image, exif_orientation(data))


def parse_encoded(logits_fn, image_bytes: tf.Tensor, size: int, resize: str,
                  ) -> dict[str, tf.Tensor]:
    """Encoded photos (string [B], each of any size and format) -> each one's label map
    as a PNG at its own (upright) size, and that size: ``labels_png``, ``height``,
    ``width``. What a TF Serving REST client sends as ``{"b64": ...}``."""
    def one(data):
        image = decode_photo(data)
        labels = parse(logits_fn, image[None], size, resize)["labels"][0]
        return tf.io.encode_png(labels[..., None]), tf.shape(image)[0], tf.shape(image)[1]

    png, height, width = tf.map_fn(one, image_bytes, fn_output_signature=(
        tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)))
    return {"labels_png": png, "height": height, "width": width}
