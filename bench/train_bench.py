"""Training throughput: facepars's custom train_step vs the seed's compile + fit.

    python bench/train_bench.py [--model lraspp_mobilenetv3] [--width 1.0] [--size 128]

Same network, same synthetic records, float32, one run on this CPU. Images/s of

  seed:     the network with a softmax head, ``model.compile`` with the three
            losses as separate functions (cross-entropy, Dice, Jaccard) and
            segmentation_models-style batch-averaged IoU and F1 metrics,
            ``model.fit`` on a Python generator of float images and float one-hot
            masks (what the seed fed);
  facepars: FaceParser's train_step (fused loss, confusion-matrix metric) on the
            uint8 tf.data pipeline from the shards, augmentation off (the seed had
            none), then with jit_compile, with mixed_bfloat16, and with
            augmentation on.

Prints each rate and its ratio to the seed's (target: float32 >= 1.3x).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from facepars.losses import EPSILON  # noqa: E402
from facepars import schema, task  # noqa: E402
from facepars.configs import smoke  # noqa: E402
from facepars.data import pipeline, shards  # noqa: E402
from facepars.data.augment import NO_AUGMENTATION, AugmentConfig  # noqa: E402
from facepars.models import build_model  # noqa: E402


def seed_losses_and_metrics(num_classes):
    """The seed's segmentation_models losses and metrics, on softmax outputs and one-hot masks."""
    def scores(y, p):
        tp = tf.reduce_sum(y * p, [1, 2])
        fp = tf.reduce_sum(p, [1, 2]) - tp
        fn = tf.reduce_sum(y, [1, 2]) - tp
        return tp, fp, fn

    def dice_loss(y, p):
        tp, fp, fn = scores(y, p)
        return 1 - tf.reduce_mean((2 * tp + EPSILON) / (2 * tp + fp + fn + EPSILON))

    def jaccard_loss(y, p):
        tp, fp, fn = scores(y, p)
        return 1 - tf.reduce_mean((tp + EPSILON) / (tp + fp + fn + EPSILON))

    def total_loss(y, p):
        return keras.losses.categorical_crossentropy(y, p) + dice_loss(y, p)[..., None, None] \
            + jaccard_loss(y, p)[..., None, None]

    def iou_score(y, p):
        p = tf.one_hot(tf.argmax(p, -1), num_classes)
        tp, fp, fn = scores(y, p)
        return tf.reduce_mean((tp + EPSILON) / (tp + fp + fn + EPSILON))

    def f1_score(y, p):
        p = tf.one_hot(tf.argmax(p, -1), num_classes)
        tp, fp, fn = scores(y, p)
        return tf.reduce_mean((2 * tp + EPSILON) / (2 * tp + fp + fn + EPSILON))

    return total_loss, [iou_score, f1_score]


def seed_rate(network, manifest, batch, steps) -> float:
    images, masks = [], []
    for example in pipeline.make_dataset(manifest, "train", False,
                                         pipeline.InputConfig(global_batch_size=batch)):
        images.append(example["image"].numpy())
        masks.append(example["mask"].numpy())
    images, masks = np.concatenate(images), np.concatenate(masks)
    n = network.output.shape[-1]

    def generator():
        while True:
            for i in range(0, len(images) - batch + 1, batch):
                yield (images[i:i + batch].astype(np.float32) / 255.0,
                       np.eye(n, dtype=np.float32)[masks[i:i + batch]])

    model = keras.Model(network.input, keras.layers.Softmax(dtype="float32")(network.output))
    loss, metrics = seed_losses_and_metrics(n)
    model.compile(keras.optimizers.SGD(0.1), loss=loss, metrics=metrics)
    model.fit(generator(), steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(generator(), steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def facepars_rate(make_network, manifest, batch, steps, jit=False, augment=NO_AUGMENTATION) -> float:
    network = make_network()
    parser = task.FaceParser(network, manifest.class_table, smoke.get_config().loss, augment)
    parser.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
    ds = pipeline.make_dataset(manifest, "train", True,
                               pipeline.InputConfig(global_batch_size=batch, seed=0))
    parser.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)
    start = time.perf_counter()
    parser.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lraspp_mobilenetv3")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    data = os.path.join(tempfile.gettempdir(), f"facepars_train_bench_{args.size}")
    if not tf.io.gfile.exists(schema.join(data, schema.MANIFEST)):
        shards.run(shards.PrepareConfig(output_dir=data, num_examples=400, image_size=args.size,
                                        synthetic_size=args.size * 3 // 2, workers=2, overwrite=True))
    manifest = schema.Manifest.load(data)

    def make_network():
        return build_model(args.model, manifest.class_table.num_classes, args.size, width=args.width)

    rates = {"seed (compile + fit on a generator)": seed_rate(make_network(), manifest, args.batch, args.steps)}
    rates["facepars float32"] = facepars_rate(make_network, manifest, args.batch, args.steps)
    rates["facepars float32 + jit_compile"] = facepars_rate(make_network, manifest, args.batch,
                                                            args.steps, jit=True)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    rates["facepars mixed_bfloat16"] = facepars_rate(make_network, manifest, args.batch, args.steps)
    keras.mixed_precision.set_global_policy("float32")
    rates["facepars float32 + augmentation"] = facepars_rate(
        make_network, manifest, args.batch, args.steps, augment=AugmentConfig(hue=0, saturation=0))
    base = rates["seed (compile + fit on a generator)"]
    print(f"{args.model} width {args.width}, {args.size}x{args.size}, batch {args.batch}, "
          f"{args.steps} steps each")
    for name, rate in rates.items():
        print(f"{name:40s} {rate:8.1f} images/s  {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
