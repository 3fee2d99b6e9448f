"""Geometric augmentation: the XLA-compilable gather sampler vs the op it replaced.

    python bench/augment_bench.py [--batch 32] [--size 256] [--rounds 5]

On the same batch of synthetic faces and the same random flips, zooms, rotations
and shifts, one CPU run, interleaved rounds, median times:

  op:              tf.raw_ops.ImageProjectiveTransformV3 (bilinear image, nearest
                   mask), what facepars used before; it has no XLA kernel;
  gather:          facepars.data.augment.affine_sample in a tf.function;
  gather + XLA:    the same with jit_compile=True (how it runs inside a compiled
                   step, and the only one of the three a TPU can run);
  each transform:  brightness + contrast, saturation + hue, blur, noise alone,
                   op by op;
  all transforms:  the whole default augmentation (geometry, colour, blur,
                   noise) op by op, and as the Augmenter runs it in every train
                   step: compiled with XLA.

Prints milliseconds per batch and each ratio to the op.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facepars.configs import common  # noqa: E402
from facepars.core.classes import SOURCE_TABLES, TAXONOMIES  # noqa: E402
from facepars.data import augment, synthetic  # noqa: E402


def faces(batch: int, size: int):
    lut, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES["seed8"])
    pairs = [synthetic.render(11, i, size, size) for i in range(batch)]
    images = np.stack([p[0] for p in pairs]).astype(np.float32) / 255.0
    return tf.constant(images), tf.constant(np.stack([lut[p[1]] for p in pairs]))


def transform_op(images, masks, transforms, fill_label):
    shape = tf.shape(masks)[1:3]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape, fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")
    labels = tf.raw_ops.ImageProjectiveTransformV3(
        images=masks[..., None], transforms=transforms, output_shape=shape,
        fill_value=float(fill_label), interpolation="NEAREST", fill_mode="CONSTANT")[..., 0]
    return out, labels


def single_transforms() -> dict[str, common.AugmentConfig]:
    """Each group of the default augmentation on its own, at its default strength."""
    on = common.AugmentConfig()
    groups = {"brightness + contrast": ("brightness", "contrast"),
              "saturation + hue": ("saturation", "hue"), "blur": ("blur",), "noise": ("noise",)}
    return {name: dataclasses.replace(common.NO_AUGMENTATION,
                                      **{field: getattr(on, field) for field in fields})
            for name, fields in groups.items()}


def milliseconds(fn, args, repeats: int = 10) -> float:
    fn(*args)[0].numpy()  # trace, compile, warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)[0].numpy()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    images, masks = faces(args.batch, args.size)
    rng = np.random.default_rng(0)
    transforms = augment._inverse_transforms(
        tf.constant(rng.random(args.batch) < 0.5),
        tf.constant(rng.uniform(0.8, 1.2, args.batch), tf.float32),
        tf.constant(rng.uniform(-15, 15, args.batch) * math.pi / 180, tf.float32),
        tf.constant(rng.uniform(-0.08, 0.08, (args.batch, 2)) * args.size, tf.float32), args.size)
    table = TAXONOMIES["seed8"].table
    augmenter = augment.Augmenter(common.AugmentConfig(), table)
    seed = tf.constant([1, 2])
    variants = {
        "op (ImageProjectiveTransformV3)": (tf.function(transform_op),
                                            (images, masks, transforms, 0)),
        "gather": (tf.function(augment.affine_sample), (images, masks, transforms, 0)),
        "gather + XLA": (tf.function(augment.affine_sample, jit_compile=True),
                         (images, masks, transforms, 0)),
        **{f"{name} alone": (tf.function(augment.Augmenter(cfg, table).transform),
                             (images, masks, seed)) for name, cfg in single_transforms().items()},
        "all transforms": (tf.function(augmenter.transform), (images, masks, seed)),
        "all transforms + XLA (the Augmenter)": (augmenter, (images, masks, seed)),
    }
    times = {name: [] for name in variants}
    for r in range(args.rounds):  # interleaved: a slow spell hits every variant
        for name, (fn, fn_args) in variants.items():
            times[name].append(milliseconds(fn, fn_args))
        print(f"round {r + 1}: " + ", ".join(f"{v[-1]:.1f}" for v in times.values()), flush=True)
    base = float(np.median(times["op (ImageProjectiveTransformV3)"]))
    print(f"batch {args.batch} at {args.size}x{args.size}; "
          f"median over {args.rounds} rounds, ms per batch")
    for name, values in times.items():
        print(f"{name:34s} {np.median(values):8.2f} ms  {np.median(values) / base:5.2f}x the op")


if __name__ == "__main__":
    main()
