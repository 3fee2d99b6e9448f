"""The fused Dice + cross-entropy + Jaccard loss (the notebook's loss, computed once).

The notebook summed three segmentation_models losses, each taking its own softmax
output and float one-hot targets. Here one function takes integer labels and
logits, computes ``log_softmax`` once in float32 and every term from the same
probabilities, and reduces everything to a handful of per-class sums:

    tp_c   = sum over valid pixels of p_c * [y == c]
    p_c    = sum over valid pixels of p_c
    n_c    = number of valid pixels labelled c
    nll    = sum over valid pixels of w_y * -log p_y,     count = valid pixels

    cross_entropy = nll / count
    dice_c    = (2 tp_c + eps) / (p_c + n_c + eps)
    jaccard_c = (tp_c + eps) / (p_c + n_c - tp_c + eps)
    dice = 1 - sum_c w_c dice_c / sum_c w_c   (jaccard likewise)

Pixels labelled ``IGNORE_LABEL`` count in no term. ``eps`` makes a class absent
from both labels and predictions score 1 (no gradient, no NaN), as the notebook's
``smooth`` did.

Global batch under tf.distribute. Dice and Jaccard are ratios, so the average of
per-replica Dice values is not the Dice of the global batch. The per-class sums
above are instead summed across replicas with one ``all_reduce`` before any
ratio is formed, so every replica computes the loss of the global batch. The
all-reduce is differentiable: its gradient is the all-reduce (sum) of the
upstream gradients, i.e. ``num_replicas`` times the gradient of the global loss
with respect to the local sums. The train step therefore scales the loss by
``1 / num_replicas`` before differentiating (as Keras does for every loss) and
the optimizer's cross-replica gradient sum then yields exactly the gradient of
the global-batch loss.
"""

from __future__ import annotations

import tensorflow as tf

from facepars.core.classes import IGNORE_LABEL

EPSILON = 1e-5
TERMS = ("cross_entropy", "dice", "jaccard")


def _sum_across_replicas(x: tf.Tensor) -> tf.Tensor:
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def label_one_hot(labels: tf.Tensor, num_classes: int,
                  ignore_label: int = IGNORE_LABEL) -> tf.Tensor:
    """(N, C) float32 one-hot rows of the flattened labels; ignore pixels are zero rows.

    Index -1 one-hot encodes to all zeros, so ignore pixels drop out of every sum
    without a pass to mask them. The loss and the confusion matrix both build
    their label rows with it.
    """
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    return tf.one_hot(tf.where(labels == ignore_label, -1, labels), num_classes, dtype=tf.float32)


def fused_loss(labels: tf.Tensor, logits: tf.Tensor, weights=(1.0, 1.0, 1.0),
               class_weights=None, ignore_label: int = IGNORE_LABEL) -> dict[str, tf.Tensor]:
    """Return ``{"loss", "cross_entropy", "dice", "jaccard"}`` as float32 scalars.

    Args:
      labels: integer class ids (B, H, W); ``ignore_label`` pixels are left out.
      logits: (B, H, W, C) in any float dtype; cast to float32 first.
      weights: the weights of the three terms in the total (1, 1, 1 = the notebook's).
      class_weights: optional (C,) weights of the classes in every term.
    """
    logits = tf.cast(logits, tf.float32)
    num_classes = logits.shape[-1]
    flat_logits = tf.reshape(logits, [-1, num_classes])
    one_hot = label_one_hot(labels, num_classes, ignore_label)  # (N, C), ignore rows zero

    log_probs = tf.nn.log_softmax(flat_logits, axis=-1)
    probs = tf.exp(log_probs)
    cw = tf.ones([num_classes]) if class_weights is None else tf.constant(class_weights, tf.float32)

    # Matrix products reduce every full-size tensor to per-class sums:
    # joint[c, k] = sum over pixels labelled c of p_k, and likewise of log p_k.
    # Their diagonals give the true positives and the log-likelihoods, the column
    # sums the predicted mass over labelled pixels; forward and backward are each
    # one pass over (N, C) on the matrix unit instead of several elementwise ones.
    # Two products rather than one of [probs, log_probs]: the concatenation and
    # its gradient's two slices cost more than the second product.
    joint = tf.matmul(one_hot, probs, transpose_a=True)
    true_pos = tf.linalg.diag_part(joint)
    prob_sum = tf.reduce_sum(joint, axis=0)
    nll = -tf.reduce_sum(cw * tf.linalg.diag_part(tf.matmul(one_hot, log_probs, transpose_a=True)))
    label_sum = tf.reduce_sum(one_hot, axis=0)
    count = tf.reduce_sum(label_sum)

    sums = _sum_across_replicas(tf.concat(
        [true_pos, prob_sum, label_sum, tf.stack([nll, count])], axis=0))
    true_pos, prob_sum, label_sum = tf.split(sums[:3 * num_classes], 3)
    nll, count = sums[3 * num_classes], sums[3 * num_classes + 1]

    dice_c = (2.0 * true_pos + EPSILON) / (prob_sum + label_sum + EPSILON)
    jaccard_c = (true_pos + EPSILON) / (prob_sum + label_sum - true_pos + EPSILON)
    terms = {
        "cross_entropy": nll / tf.maximum(count, 1.0),
        "dice": 1.0 - tf.reduce_sum(cw * dice_c) / tf.reduce_sum(cw),
        "jaccard": 1.0 - tf.reduce_sum(cw * jaccard_c) / tf.reduce_sum(cw),
    }
    terms["loss"] = tf.add_n([w * terms[t] for w, t in zip(weights, TERMS)])
    return terms
