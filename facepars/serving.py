"""A photo in, labels at the photo's size out: the mapping around the network, in TF ops.

A photo enters the network the way ``prepare`` put training photos in: the same
content box (``facepars.imaging.Geometry``: stretched to the square, or
scaled to fit and padded with black), an antialiased bilinear resize. The logits
come back the inverse way: the content box cropped, resized bilinearly to the
photo's size, the argmax taken there (never a nearest resize of labels).

Written once, in TensorFlow ops, and used by everything that serves a model:
the SavedModel's signatures (facepars.export), ``Predictor`` over a Keras,
SavedModel or TFLite network, and evaluation at original resolution. So the
exported graph and the Python API give the same probabilities, not merely the
same argmax. Prepare resizes with Pillow, whose antialiasing is the same
triangle filter but rounds to uint8 between passes: the network inputs differ by
at most a few levels (tests/test_serving.py measures it).
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
