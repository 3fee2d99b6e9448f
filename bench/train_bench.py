"""Training throughput: facepars's custom train_step vs the notebook's compile + fit.

    python bench/train_bench.py [--model lraspp_mobilenetv3] [--width 1.0] [--size 128]

Same network, same synthetic records, float32, one run on this CPU. Images/s of

  seed:     the network with a softmax head, ``model.compile`` with the three
            losses as separate functions (cross-entropy, Dice, Jaccard) and
            segmentation_models-style batch-averaged IoU and F1 metrics,
            ``model.fit`` on a Python generator of float images and float one-hot
            masks (what the notebook fed);
  facepars: FaceParser's train_step (fused loss, confusion-matrix metric) on the
            uint8 tf.data pipeline from the shards, augmentation off (the notebook had
            none), then with jit_compile, with mixed_bfloat16, and with every
            default augmentation on (geometry, colour, blur, noise).

and, as the ceiling for any step with this network, the network's forward,
backward and update alone (no loss terms, no metrics) on the same input.

Prints each rate and its ratio to the notebook's (target: float32 >= 1.3x), and the
step's own cost: facepars / network alone, per round, with and without
augmentation (target: >= 0.9 in every round). Within a round the facepars
variants and the network alone take turns step by step (the notebook runs its
steps in a block before them), and each rate is taken from the median step
time, so a slow spell on this shared machine does not decide a ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from facepars import prepare
from facepars.configs import smoke
from facepars.configs.common import NO_AUGMENTATION, AugmentConfig
from facepars.core import files
from facepars.data import pipeline, schema
from facepars.models import build_model
from facepars.training import task
from facepars.training.losses import EPSILON


def seed_losses_and_metrics(num_classes):
    """The notebook's segmentation_models losses and metrics, on softmax outputs, one-hot masks."""
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


def interleaved_step_times(trainers: dict, steps: int) -> dict[str, list[float]]:
    """Wall time of ``steps`` train steps of every variant, the variants taking turns
    step by step.

    Each step is Keras's own train function on the variant's iterator, waited
    for before the clock stops. Taking turns every step, not every run, puts a
    slow spell of this shared machine (up to 2x for seconds at a time) on every
    variant alike, so the ratios between variants hold even when the rates move.
    """
    runs = {name: (model.train_function, iter(data())) for name, (model, data) in trainers.items()}
    times = {name: [] for name in trainers}
    for _ in range(steps):
        for name, (train_function, iterator) in runs.items():
            start = time.perf_counter()
            float(train_function(iterator)["loss"])
            times[name].append(time.perf_counter() - start)
    return times


def input_rate(data, batch: int, batches: int = 30) -> float:
    """Batches straight from the input, no model: its own throughput."""
    iterator = iter(data)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def seed_trainer(network, manifest, batch):
    """The notebook's way: softmax model, compile with separate losses, a generator of floats."""
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

    size = images.shape[1]
    signature = (tf.TensorSpec((batch, size, size, 3), tf.float32),
                 tf.TensorSpec((batch, size, size, n), tf.float32))
    # What fit does with a generator (Keras wraps it in from_generator).
    data = lambda: tf.data.Dataset.from_generator(generator, output_signature=signature)

    model = keras.Model(network.input, keras.layers.Softmax(dtype="float32")(network.output))
    loss, metrics = seed_losses_and_metrics(n)
    model.compile(keras.optimizers.SGD(0.1), loss=loss, metrics=metrics)
    return model, data


class NetworkOnly(keras.Model):
    """The floor under any train step: forward, backward and update, nothing else."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(self.network(task.to_model_input(data["image"]), training=True))
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss}


def train_dataset(manifest, batch):
    """The facepars input both facepars variants and the ceiling train on."""
    ds = pipeline.make_dataset(manifest, "train", True,
                               pipeline.InputConfig(global_batch_size=batch, seed=0))
    return lambda: ds


def network_only_trainer(network, manifest, batch):
    model = NetworkOnly(network)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model, train_dataset(manifest, batch)


def facepars_trainer(network, manifest, batch, jit=False, augment=NO_AUGMENTATION):
    parser = task.FaceParser(network, manifest.class_table, smoke.get_config().loss, augment)
    parser.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
    return parser, train_dataset(manifest, batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lraspp_mobilenetv3")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = os.path.join(tempfile.gettempdir(), f"facepars_train_bench_{args.size}")
    if not tf.io.gfile.exists(files.join(data, schema.MANIFEST)):
        prepare.run(
            prepare.PrepareConfig(
                output_dir=data,
                num_examples=400,
                image_size=args.size,
                synthetic_size=args.size * 3 // 2,
                workers=2,
                overwrite=True,
            )
        )
    manifest = schema.Manifest.load(data)

    def make_network(policy="float32"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            return build_model(
                args.model, manifest.class_table.num_classes, args.size, width=args.width
            )
        finally:
            keras.mixed_precision.set_global_policy("float32")

    seed = "seed (compile + fit on a generator)"
    trainers = {
        seed: seed_trainer(make_network(), manifest, args.batch),
        "facepars float32": facepars_trainer(make_network(), manifest, args.batch),
        "facepars float32 + jit_compile": facepars_trainer(
            make_network(), manifest, args.batch, jit=True
        ),
        "facepars mixed_bfloat16": facepars_trainer(
            make_network("mixed_bfloat16"), manifest, args.batch
        ),
        "facepars float32 + augmentation": facepars_trainer(
            make_network(), manifest, args.batch, augment=AugmentConfig()
        ),
        "network forward + backward alone": network_only_trainer(
            make_network(), manifest, args.batch
        ),
    }
    for model, data in trainers.values():  # trace and warm up
        model.fit(data(), steps_per_epoch=3, epochs=1, verbose=0)
    rates = {name: [] for name in trainers}
    # The notebook's generator builds its next float batch on the host while a step
    # runs, so the notebook takes its steps in a block of its own: interleaved, that
    # work would land on the next variant's steps.
    facepars = {name: trainer for name, trainer in trainers.items() if name != seed}
    for r in range(args.rounds):
        for group in ({seed: trainers[seed]}, facepars):
            for name, times in interleaved_step_times(group, args.steps).items():
                rates[name].append(args.batch / float(np.median(times)))
        print(f"round {r + 1}: " + ", ".join(f"{v[-1]:.1f}" for v in rates.values()), flush=True)
    print(f"{args.model} width {args.width}, {args.size}x{args.size}, batch {args.batch}; "
          f"median over {args.rounds} rounds of each round's median step")
    base = float(np.median(rates[seed]))
    for name, data in (("the notebook's generator", trainers[seed][1]),
                       ("the facepars input pipeline", trainers["facepars float32"][1])):
        print(f"{name} alone: {input_rate(data(), args.batch):.0f} images/s "
              "(what caps a train step however fast the accelerator)")
    for name, values in rates.items():
        ratios = [v / b for v, b in zip(values, rates[seed])]
        print(f"{name:40s} {np.median(values):8.1f} images/s  {np.median(values) / base:5.2f}x"
              f"  (per-round ratios {', '.join(f'{x:.2f}' for x in ratios)})")
    ceiling = rates["network forward + backward alone"]
    for name in ("facepars float32", "facepars float32 + augmentation"):
        ratios = [v / c for v, c in zip(rates[name], ceiling)]
        print(f"step's own cost, {name} / network alone: median {np.median(ratios):.2f}, "
              f"per round {', '.join(f'{x:.2f}' for x in ratios)} (target >= 0.9 in every round)")


if __name__ == "__main__":
    main()
