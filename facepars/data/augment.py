"""Augmentation on the device, inside the replica step, on whole batches.

Geometry (flip, scale, rotation, translation) is one projective transform per
example, applied to the image (bilinear) and the mask (nearest, so no label is
ever invented) by the same op with the same matrix: they cannot drift apart.
Pixels brought in from outside are black in the image and ``fill_label`` in the
mask (background, or the ignore label for padded data sets). A flipped example
also swaps its taxonomy's left/right classes.

Photometric changes (brightness, contrast, saturation, hue, blur, noise) touch
the image only. All randomness is stateless, drawn from a per-step seed, so a
run with a fixed seed is reproducible.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from facepars.classes import ClassTable


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Strengths; 0 turns a transform off."""

    flip: float = 0.5          # probability of a horizontal flip
    scale: float = 0.2         # zoom in [1 - scale, 1 + scale]
    rotate: float = 15.0       # degrees, in [-rotate, rotate]
    translate: float = 0.08    # fraction of the side, in [-translate, translate]
    brightness: float = 0.15   # added, in [-b, b]
    contrast: float = 0.2      # factor in [1 - c, 1 + c]
    saturation: float = 0.2    # factor in [1 - s, 1 + s]
    hue: float = 0.03          # turn of the colour wheel, in [-h, h]
    blur: float = 0.1          # probability of a 3x3 Gaussian blur
    noise: float = 0.02        # largest std of added Gaussian noise


NO_AUGMENTATION = AugmentConfig(**{f.name: 0.0 for f in dataclasses.fields(AugmentConfig)})


class Augmenter:
    """``augmenter(images, masks, seed)`` -> augmented ``(images, masks)``.

    images: float (B, S, S, 3) in [0, 1]; masks: uint8 (B, S, S); seed: int32 [2].
    """

    def __init__(self, cfg: AugmentConfig, class_table: ClassTable, fill_label: int = 0):
        self.cfg = cfg
        self.fill_label = fill_label
        perm = np.arange(256, dtype=np.int32)
        perm[:class_table.num_classes] = class_table.flip_permutation()
        self.flip_permutation = tf.constant(perm)

    def __call__(self, images: tf.Tensor, masks: tf.Tensor, seed: tf.Tensor):
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 10))
        images, masks = self.geometry(images, masks, seeds[:5])
        return self.photometric(images, seeds[5:]), masks

    def geometry(self, images, masks, seeds):
        cfg = self.cfg
        if not (cfg.flip or cfg.scale or cfg.rotate or cfg.translate):
            return images, masks
        batch = tf.shape(images)[0]
        size = images.shape[1]

        def uniform(seed, low, high):
            return tf.random.stateless_uniform([batch], seed, low, high)

        flipped = uniform(seeds[0], 0.0, 1.0) < cfg.flip
        zoom = uniform(seeds[1], 1.0 - cfg.scale, 1.0 + cfg.scale)
        angle = uniform(seeds[2], -cfg.rotate, cfg.rotate) * (math.pi / 180.0)
        shift = tf.stack([uniform(seeds[3], -cfg.translate, cfg.translate),
                          uniform(seeds[4], -cfg.translate, cfg.translate)], 1) * size
        transforms = _inverse_transforms(flipped, zoom, angle, shift, size)
        out_shape = tf.constant([size, size], tf.int32)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=out_shape,
            fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
        masks = tf.raw_ops.ImageProjectiveTransformV3(
            images=masks[..., None], transforms=transforms, output_shape=out_shape,
            fill_value=float(self.fill_label), interpolation="NEAREST", fill_mode="CONSTANT")[..., 0]
        swapped = tf.cast(tf.gather(self.flip_permutation, tf.cast(masks, tf.int32)), masks.dtype)
        masks = tf.where(flipped[:, None, None], swapped, masks)
        return images, masks

    def photometric(self, images, seeds):
        cfg = self.cfg
        batch = tf.shape(images)[0]
        dtype = images.dtype

        def uniform(seed, low, high):
            return tf.cast(tf.random.stateless_uniform([batch, 1, 1, 1], seed, low, high), dtype)

        if cfg.brightness:
            images = images + uniform(seeds[0], -cfg.brightness, cfg.brightness)
        if cfg.contrast:
            mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
            images = (images - mean) * uniform(seeds[1], 1 - cfg.contrast, 1 + cfg.contrast) + mean
        if cfg.saturation or cfg.hue:
            hsv = tf.image.rgb_to_hsv(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0))
            h, s, v = tf.unstack(hsv, axis=-1)
            ds = tf.random.stateless_uniform([batch, 1, 1], seeds[2], -cfg.saturation, cfg.saturation)
            dh = tf.random.stateless_uniform([batch, 1, 1], seeds[3], -cfg.hue, cfg.hue)
            hsv = tf.stack([tf.math.floormod(h + dh, 1.0), tf.clip_by_value(s * (1 + ds), 0.0, 1.0), v], -1)
            images = tf.cast(tf.image.hsv_to_rgb(hsv), dtype)
        if cfg.blur or cfg.noise:
            images = self._blur_and_noise(images, seeds[4])
        return tf.clip_by_value(images, 0.0, 1.0)

    def _blur_and_noise(self, images, seed):
        cfg = self.cfg
        batch = tf.shape(images)[0]
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        if cfg.blur:
            kernel = tf.constant([1.0, 2.0, 1.0], images.dtype)
            kernel = kernel[:, None] * kernel[None, :] / 16.0
            kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
            blurred = tf.nn.depthwise_conv2d(images, kernel, [1, 1, 1, 1], "SAME")
            chosen = tf.random.stateless_uniform([batch], seeds[0]) < cfg.blur
            images = tf.where(chosen[:, None, None, None], blurred, images)
        if cfg.noise:
            std = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[1], 0.0, cfg.noise)
            images = images + tf.cast(std, images.dtype) * tf.random.stateless_normal(
                tf.shape(images), seeds[2], dtype=images.dtype)
        return images


def _inverse_transforms(flipped, zoom, angle, shift, size):
    """Per-example rows [a0 a1 a2 b0 b1 b2 0 0] mapping output pixels to input pixels.

    The forward map is: flip about the centre, zoom, rotate, then shift. Its
    inverse, ``in = M (out - c - t) + c`` with ``M = F^-1 Z^-1 R^-1``, is what the
    transform op wants.
    """
    f = tf.where(flipped, -1.0, 1.0)
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    m00, m01 = f * cos, f * sin
    m10, m11 = -sin, cos
    c = (size - 1) / 2.0
    ox, oy = c + shift[:, 0], c + shift[:, 1]
    zeros = tf.zeros_like(cos)
    return tf.stack([m00, m01, c - m00 * ox - m01 * oy,
                     m10, m11, c - m10 * ox - m11 * oy, zeros, zeros], axis=1)
