import keras
import numpy as np
import pytest
import tensorflow as tf

from facepars.core.classes import IGNORE_LABEL
from facepars.training.losses import EPSILON, fused_loss

C = 6


def _batch(seed=0, shape=(4, 16, 12), ignore_fraction=0.0, absent=()):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, shape)
    for c in absent:
        labels[labels == c] = (c + 1) % C
    labels[rng.random(shape) < ignore_fraction] = IGNORE_LABEL
    logits = rng.normal(0, 3, shape + (C,)).astype(np.float32)
    return labels.astype(np.int32), logits


def _reference(labels, logits, class_weights=None):
    """Keras's cross-entropy and the textbook Dice / Jaccard, written separately."""
    cw = tf.ones([C]) if class_weights is None else tf.constant(class_weights, tf.float32)
    valid = labels != IGNORE_LABEL
    y = tf.one_hot(np.where(valid, labels, 0), C) * valid[..., None]
    cce_per_pixel = keras.losses.CategoricalCrossentropy(from_logits=True, reduction=None)(
        y, logits
    )
    w = tf.gather(cw, np.where(valid, labels, 0)) * valid
    cce = tf.reduce_sum(cce_per_pixel * w) / valid.sum()
    p = tf.nn.softmax(logits) * valid[..., None]
    dice_terms, jaccard_terms = [], []
    for c in range(C):
        inter = tf.reduce_sum(p[..., c] * y[..., c])
        total = tf.reduce_sum(p[..., c]) + tf.reduce_sum(y[..., c])
        dice_terms.append((2 * inter + EPSILON) / (total + EPSILON))
        jaccard_terms.append((inter + EPSILON) / (total - inter + EPSILON))
    dice = 1 - tf.reduce_sum(cw * tf.stack(dice_terms)) / tf.reduce_sum(cw)
    jaccard = 1 - tf.reduce_sum(cw * tf.stack(jaccard_terms)) / tf.reduce_sum(cw)
    return cce, dice, jaccard


@pytest.mark.parametrize("ignore_fraction", [0.0, 0.2])
@pytest.mark.parametrize("class_weights", [None, [0.5, 1, 2, 1, 3, 0.2]])
def test_fused_loss_equals_the_sum_of_independent_references(ignore_fraction, class_weights):
    labels, logits = _batch(1, ignore_fraction=ignore_fraction)
    logits_t = tf.constant(logits)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits_t)
        out = fused_loss(labels, logits_t, class_weights=class_weights)
        cce, dice, jaccard = _reference(labels, logits_t, class_weights)
        reference = cce + dice + jaccard
    np.testing.assert_allclose(out["cross_entropy"], cce, atol=1e-5)
    np.testing.assert_allclose(out["dice"], dice, atol=1e-5)
    np.testing.assert_allclose(out["jaccard"], jaccard, atol=1e-5)
    np.testing.assert_allclose(out["loss"], reference, atol=1e-5)
    grad = tape.gradient(out["loss"], logits_t).numpy()
    grad_ref = tape.gradient(reference, logits_t).numpy()
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, grad_ref, atol=1e-7, rtol=1e-4)
    if ignore_fraction:
        assert (grad[labels == IGNORE_LABEL] == 0).all()


def test_term_weights_scale_the_total():
    labels, logits = _batch(2)
    out = fused_loss(labels, logits, weights=(2.0, 0.0, 0.5))
    np.testing.assert_allclose(
        out["loss"], 2 * out["cross_entropy"] + 0.5 * out["jaccard"], rtol=1e-6
    )


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_extreme_low_precision_logits_stay_finite(dtype):
    labels, _ = _batch(3, absent=(2, 4))
    logits = tf.cast(np.where(np.random.default_rng(0).random(labels.shape + (C,)) < 0.5,
                              1e4, -1e4), dtype)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        out = fused_loss(labels, logits)
    for value in out.values():
        assert value.dtype == tf.float32 and np.isfinite(value.numpy())
    assert np.isfinite(tape.gradient(out["loss"], logits).numpy().astype(np.float32)).all()


def test_perfect_prediction_with_absent_classes_scores_zero_dice_loss():
    labels, _ = _batch(4, absent=(1, 5))
    logits = tf.one_hot(labels, C) * 50.0
    out = fused_loss(labels, logits)
    assert out["dice"] < 1e-4 and out["jaccard"] < 1e-4 and out["cross_entropy"] < 1e-4


def test_global_batch_loss_under_two_replicas_equals_one_device():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    labels, logits = _batch(5, shape=(8, 16, 16), ignore_fraction=0.1)
    single = fused_loss(labels, logits)

    def shard(ctx):
        i = ctx.replica_id_in_sync_group
        return labels[i * 4:(i + 1) * 4], logits[i * 4:(i + 1) * 4]

    halves = strategy.experimental_distribute_values_from_function(shard)
    per_replica = strategy.run(tf.function(lambda x: fused_loss(*x)), args=(halves,))
    for key in single:
        for value in strategy.experimental_local_results(per_replica[key]):
            np.testing.assert_allclose(value, single[key], rtol=1e-6)
    # An average of per-replica Dice values would differ: the halves' own losses.
    local = [fused_loss(*shard(type("C", (), {"replica_id_in_sync_group": i}))) for i in (0, 1)]
    assert abs((local[0]["dice"] + local[1]["dice"]) / 2 - single["dice"]) > 1e-4
