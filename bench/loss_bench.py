"""Fused loss vs the notebook's three separately called losses: time and peak memory.

    python bench/loss_bench.py [--batch 32] [--size 256] [--repeats 20]

Both variants run as compiled tf.functions computing the loss and its gradient
with respect to the logits, on the same 32x256x256x8 batch, on this CPU. The
unfused variant is what three independent Keras losses given integer labels and
logits do: each takes its own softmax and one-hot (cross-entropy through Keras's
CategoricalCrossentropy on probabilities, Dice and Jaccard as segmentation_models
compute them). Times are interleaved rounds, medians reported. Peak memory is
measured in a fresh process per variant (peak RSS minus RSS before the first
call, Linux only). Prints the ratios fused / unfused; target time ratio <= 0.7.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from facepars.training.losses import EPSILON, fused_loss


def _soft_scores(labels, logits, num_classes):
    probs = tf.nn.softmax(logits)
    one_hot = tf.one_hot(labels, num_classes)
    tp = tf.reduce_sum(probs * one_hot, [0, 1, 2])
    fp = tf.reduce_sum(probs, [0, 1, 2]) - tp
    fn = tf.reduce_sum(one_hot, [0, 1, 2]) - tp
    return tp, fp, fn


def cce_loss(labels, logits):
    probs = tf.nn.softmax(logits)
    one_hot = tf.one_hot(labels, logits.shape[-1])
    return keras.losses.CategoricalCrossentropy()(one_hot, probs)


def dice_loss(labels, logits):
    tp, fp, fn = _soft_scores(labels, logits, logits.shape[-1])
    return 1 - tf.reduce_mean((2 * tp + EPSILON) / (2 * tp + fp + fn + EPSILON))


def jaccard_loss(labels, logits):
    tp, fp, fn = _soft_scores(labels, logits, logits.shape[-1])
    return 1 - tf.reduce_mean((tp + EPSILON) / (tp + fp + fn + EPSILON))


def unfused(labels, logits):
    return cce_loss(labels, logits) + dice_loss(labels, logits) + jaccard_loss(labels, logits)


def fused(labels, logits):
    return fused_loss(labels, logits)["loss"]


VARIANTS = {"fused": fused, "unfused": unfused}


def make_step(loss_fn):
    @tf.function
    def step(labels, logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = loss_fn(labels, logits)
        return loss, tape.gradient(loss, logits)
    return step


def make_batch(batch, size, classes=8):
    rng = np.random.default_rng(0)
    labels = tf.constant(rng.integers(0, classes, (batch, size, size), dtype=np.int32))
    logits = tf.constant(2 * rng.standard_normal((batch, size, size, classes), dtype=np.float32))
    return labels, logits


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":")) / 1024


def peak_memory_mb(variant, batch, size) -> float:
    """Run one variant in this (fresh) process; peak RSS growth in MB.

    VmHWM, not ru_maxrss: the latter is inherited across fork+exec from the
    (large) parent process and would hide the child's own peak.
    """
    labels, logits = make_batch(batch, size)
    step = make_step(VARIANTS[variant])
    step.get_concrete_function(labels, logits)  # trace outside the measurement
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current RSS
    before = _status_mb("VmRSS")
    for _ in range(3):
        step(labels, logits)[1].numpy()
    return _status_mb("VmHWM") - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--memory_of", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        print(peak_memory_mb(args.memory_of, args.batch, args.size))
        return

    labels, logits = make_batch(args.batch, args.size)
    steps = {k: make_step(v) for k, v in VARIANTS.items()}
    values = {k: s(labels, logits) for k, s in steps.items()}  # trace and warm up
    np.testing.assert_allclose(values["fused"][0], values["unfused"][0], rtol=1e-4)
    times = {k: [] for k in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step(labels, logits)[1].numpy()
            times[name].append(time.perf_counter() - start)
    median = {k: float(np.median(v)) for k, v in times.items()}
    memory = {k: float(subprocess.check_output(
        [sys.executable, __file__, "--memory_of", k, "--batch", str(args.batch),
         "--size", str(args.size)], text=True).split()[-1]) for k in VARIANTS}
    print(f"batch {args.batch}x{args.size}x{args.size}x8, loss + gradient, {args.repeats} rounds")
    for k in VARIANTS:
        print(f"{k:8s} {median[k] * 1000:8.1f} ms/call   peak +{memory[k]:7.1f} MB")
    print(f"time ratio fused/unfused:   {median['fused'] / median['unfused']:.2f}  (target <= 0.7)")
    print(f"memory ratio fused/unfused: {memory['fused'] / memory['unfused']:.2f}")


if __name__ == "__main__":
    main()
