"""Augmentation on the device, inside the replica step, on whole batches.

Geometry (flip, scale, rotation, translation) is one affine map per example,
applied to the image (bilinear) and the mask (nearest, so no label is ever
invented) from the same sampling grid: they cannot drift apart. Pixels brought
in from outside are black in the image and ``fill_label`` in the mask
(background, or the ignore label for padded data sets). A flipped example also
swaps its taxonomy's left/right classes.

The sampling is written as an explicit grid and batched gathers rather than
``ImageProjectiveTransformV3``: that op has no XLA kernel (TensorFlow issues
42454 and 100865), so under ``jit_compile`` and on a TPU it would stop the step
or bounce it to the host. The result matches the op (tests/data/test_augment.py).

Photometric changes touch the image only: brightness, contrast, saturation and
hue as one colour affine per example (saturation and hue act on the YIQ chroma
plane, the linear counterpart of an HSV shift), then an occasional 3x3 blur and
noise. All randomness is stateless, drawn from a per-step seed, so a run with a
fixed seed is reproducible, with or without XLA.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from facepars.configs.common import NO_AUGMENTATION, AugmentConfig
from facepars.core.classes import ClassTable

# One random-number algorithm everywhere: "auto_select" picks Philox on a CPU or
# GPU but not always under XLA, and a jit-compiled step would draw other numbers.
RNG = "philox"


def random_uniform(shape, seed, low=0.0, high=1.0):
    """Stateless uniform floats in [low, high), the same eagerly and under XLA.

    ``tf.random.stateless_uniform``'s float path draws other numbers in XLA's
    lowering than in the CPU kernel, even for one algorithm; its full-range
    integers agree. So the floats are made here from 24 of those bits.
    """
    bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.int32,
                                       alg=RNG)
    unit = tf.cast(tf.bitwise.bitwise_and(bits, 0xFFFFFF), tf.float32) * (1.0 / (1 << 24))
    return low + (high - low) * unit


def random_noise(shape, seed):
    """Stateless zero-mean, unit-variance noise, the same under XLA.

    Each value is the sum of two random bytes (a triangular distribution, close
    to a Gaussian for augmentation), so one 32-bit draw makes two values: the
    random bits are most of the cost of noise, under XLA on a CPU several times
    the rest, and Box-Muller would need four times as many plus a log, a square
    root and a cosine. The values come in steps of 1/510 of the noise's range,
    far finer than the 8-bit photo's own.
    """
    size = tf.reduce_prod(shape)
    bits = tf.random.stateless_uniform([(size + 1) // 2], seed, minval=None, maxval=None,
                                       dtype=tf.int32, alg=RNG)
    pairs = tf.cast(tf.bitcast(bits, tf.uint8), tf.float32)  # (words, 4)
    sums = tf.reshape(pairs[:, :2] + pairs[:, 2:], [-1])[:size]  # 0..510, mean 255
    return tf.reshape((sums * (1.0 / 255) - 1.0) * math.sqrt(6.0), shape)


class Augmenter:
    """``augmenter(images, masks, seed)`` -> augmented ``(images, masks)``.

    images: float (B, S, S, 3) in [0, 1]; masks: uint8 (B, S, S); seed: int32 [2].

    A call runs the augmentation compiled with XLA, whether or not the step
    around it is: op by op it is some forty passes over the batch, which XLA
    fuses into a few loops (``bench/augment_bench.py`` measures the gain).
    Inside a step that is itself compiled (a TPU, ``jit_compile``) it is simply
    part of that program. ``transform`` is the same augmentation as plain ops.
    """

    def __init__(self, cfg: AugmentConfig, class_table: ClassTable, fill_label: int = 0):
        self.cfg = cfg
        self.fill_label = fill_label
        perm = np.arange(256, dtype=np.int32)
        perm[:class_table.num_classes] = class_table.flip_permutation()
        self.flip_permutation = tf.constant(perm)
        # No autograph: every branch here is Python on the config, and converting these
        # functions is most of their tracing time (BUILD_NOTES.md, the suite's time).
        self._compiled = tf.function(self.transform, jit_compile=True, autograph=False)

    def __call__(self, images: tf.Tensor, masks: tf.Tensor, seed: tf.Tensor):
        if self.cfg == NO_AUGMENTATION:
            return images, masks
        return self._compiled(images, masks, seed)

    def transform(self, images: tf.Tensor, masks: tf.Tensor, seed: tf.Tensor):
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 10, alg=RNG))
        images, masks = self.geometry(images, masks, seeds[:5])
        return self.photometric(images, seeds[5:]), masks

    def geometry(self, images, masks, seeds):
        cfg = self.cfg
        if not (cfg.flip or cfg.scale or cfg.rotate or cfg.translate):
            return images, masks
        batch = tf.shape(images)[0]
        size = images.shape[1]

        def uniform(seed, low, high):
            return random_uniform([batch], seed, low, high)

        flipped = uniform(seeds[0], 0.0, 1.0) < cfg.flip
        zoom = uniform(seeds[1], 1.0 - cfg.scale, 1.0 + cfg.scale)
        angle = uniform(seeds[2], -cfg.rotate, cfg.rotate) * (math.pi / 180.0)
        shift = tf.stack([uniform(seeds[3], -cfg.translate, cfg.translate),
                          uniform(seeds[4], -cfg.translate, cfg.translate)], 1) * size
        transforms = _inverse_transforms(flipped, zoom, angle, shift, size)
        images, masks = affine_sample(images, masks, transforms, self.fill_label)
        swapped = tf.cast(tf.gather(self.flip_permutation, tf.cast(masks, tf.int32)), masks.dtype)
        masks = tf.where(flipped[:, None, None], swapped, masks)
        return images, masks

    def photometric(self, images, seeds):
        """Brightness, contrast, saturation and hue as one colour affine per example
        (two passes over the batch), then blur and noise."""
        cfg = self.cfg
        if not (cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue or cfg.blur
                or cfg.noise):
            return images
        batch = tf.shape(images)[0]

        def uniform(seed, strength, centre=0.0):
            return random_uniform([batch], seed, centre - strength, centre + strength)

        if cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue:
            contrast = uniform(seeds[1], cfg.contrast, 1.0)
            colour = colour_matrices(uniform(seeds[2], cfg.saturation, 1.0),
                                     uniform(seeds[3], cfg.hue) * (2 * math.pi))
            # (x + b - m') c + m' with m' = m + b, then the colour matrix, which keeps
            # grey grey: c M x + b + (1 - c) m.
            offset = uniform(seeds[0], cfg.brightness) + (1 - contrast) * tf.reduce_mean(
                tf.cast(images, tf.float32), axis=[1, 2, 3])
            mixed = tf.einsum("bhwc,bdc->bhwd", images, tf.cast(colour, images.dtype))
            images = (tf.cast(contrast, images.dtype)[:, None, None, None] * mixed
                      + tf.cast(offset, images.dtype)[:, None, None, None])
        if cfg.blur or cfg.noise:
            images = self._blur_and_noise(images, seeds[4])
        return tf.clip_by_value(images, 0.0, 1.0)

    def _blur_and_noise(self, images, seed):
        cfg = self.cfg
        batch = tf.shape(images)[0]
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3, alg=RNG))
        if cfg.blur:
            chosen = random_uniform([batch], seeds[0]) < cfg.blur
            images = tf.where(chosen[:, None, None, None], binomial_blur(images), images)
        if cfg.noise:
            std = random_uniform([batch, 1, 1, 1], seeds[1], 0.0, cfg.noise)
            images = images + tf.cast(std * random_noise(tf.shape(images), seeds[2]), images.dtype)
        return images


# RGB -> YIQ (NTSC): Y is luma, (I, Q) the chroma plane that saturation scales
# and hue turns. Grey (1, 1, 1) has no chroma, so both keep it grey.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def colour_matrices(saturation: tf.Tensor, angle: tf.Tensor) -> tf.Tensor:
    """(B, 3, 3) RGB matrices scaling chroma by ``saturation`` and turning it by ``angle``.

    The linear counterpart of an HSV hue shift and saturation factor: one small
    matrix product per pixel instead of a round trip through HSV (the slowest
    colour op on a CPU), and exact for luma.
    """
    cos, sin = saturation * tf.cos(angle), saturation * tf.sin(angle)
    one, zero = tf.ones_like(cos), tf.zeros_like(cos)
    chroma = tf.stack([tf.stack([one, zero, zero], -1), tf.stack([zero, cos, -sin], -1),
                       tf.stack([zero, sin, cos], -1)], -2)
    return tf.constant(_YIQ_TO_RGB) @ chroma @ tf.constant(_RGB_TO_YIQ)


def binomial_blur(images: tf.Tensor) -> tf.Tensor:
    """The 3x3 binomial blur ([1 2 1] x [1 2 1] / 16, zero padding) as two shifted
    sums, which a CPU runs faster than the equivalent depthwise convolution."""
    rows = tf.pad(images, [[0, 0], [1, 1], [0, 0], [0, 0]])
    images = (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 4
    cols = tf.pad(images, [[0, 0], [0, 0], [1, 1], [0, 0]])
    return (cols[:, :, :-2] + 2 * cols[:, :, 1:-1] + cols[:, :, 2:]) / 4


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


def affine_sample(images: tf.Tensor, masks: tf.Tensor, transforms: tf.Tensor,
                  fill_label: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Resample images (bilinear, black outside) and masks (nearest, ``fill_label``
    outside) where ``transforms`` sends each output pixel.

    ``transforms`` holds the rows of ``ImageProjectiveTransformV3`` (affine part
    only). Both outputs keep the input's static shape. Everything here is
    elementwise arithmetic and ``gather`` with ``batch_dims``: XLA compiles it on
    every backend.
    """
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    y, x = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32),
                       indexing="ij")
    t = tf.cast(transforms, tf.float32)[:, :, None, None]
    u = t[:, 0] * x + t[:, 1] * y + t[:, 2]  # input column of every output pixel (B, H, W)
    v = t[:, 3] * x + t[:, 4] * y + t[:, 5]  # input row

    def gather(flat, rows, cols):
        """Values at integer (rows, cols), and whether each lies inside the input."""
        inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        index = tf.clip_by_value(rows, 0, height - 1) * width + tf.clip_by_value(cols, 0, width - 1)
        values = tf.gather(flat, tf.reshape(index, [batch, height * width]), batch_dims=1)
        shape = tf.concat([[batch, height, width], tf.shape(flat)[2:]], 0)
        return tf.reshape(values, shape), inside

    flat_images = tf.reshape(images, [batch, height * width, images.shape[-1]])
    u0, v0 = tf.floor(u), tf.floor(v)
    fu, fv = (u - u0)[..., None], (v - v0)[..., None]
    c0, r0 = tf.cast(u0, tf.int32), tf.cast(v0, tf.int32)
    out = tf.zeros_like(images)
    for dr, dc, weight in ((0, 0, (1 - fv) * (1 - fu)), (0, 1, (1 - fv) * fu),
                           (1, 0, fv * (1 - fu)), (1, 1, fv * fu)):
        values, inside = gather(flat_images, r0 + dr, c0 + dc)
        out += values * tf.cast(weight * tf.cast(inside, tf.float32)[..., None], images.dtype)

    # Nearest: round half away from zero, as the transform op does (std::round).
    rows = tf.cast(tf.sign(v) * tf.floor(tf.abs(v) + 0.5), tf.int32)
    cols = tf.cast(tf.sign(u) * tf.floor(tf.abs(u) + 0.5), tf.int32)
    labels, inside = gather(tf.reshape(masks, [batch, height * width]), rows, cols)
    labels = tf.where(inside, labels, tf.cast(fill_label, masks.dtype))
    return out, labels
