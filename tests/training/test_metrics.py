import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import (
    confusion_matrix,
    jaccard_score,
    precision_recall_fscore_support,
)

from facepars.core.classes import IGNORE_LABEL, ClassTable
from facepars.training.metrics import ConfusionMatrixMetric

TABLE = ClassTable("t", ("background", "a", "b", "c", "d", "e"),
                   tuple((i, i, i) for i in range(6)), face_classes=(1, 2, 3, 4, 5))
C = TABLE.num_classes


def _stream(seed=0, batches=4, shape=(3, 10, 12)):
    """Random labels and logits; class 3 is never labelled, class 5 never present."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batches):
        labels = rng.choice([0, 1, 2, 4], shape, p=[0.5, 0.3, 0.15, 0.05])
        labels[rng.random(shape) < 0.1] = IGNORE_LABEL
        logits = rng.normal(0, 1, shape + (C,)).astype(np.float32)
        logits[..., 5] = -10  # never predicted
        logits += 2.5 * tf.one_hot(np.where(labels == IGNORE_LABEL, 0, labels), C).numpy()
        out.append((labels.astype(np.int32), logits))
    return out


def _flat(batches):
    y = np.concatenate([b[0].ravel() for b in batches])
    p = np.concatenate([b[1].argmax(-1).ravel() for b in batches])
    keep = y != IGNORE_LABEL
    return y[keep], p[keep]


def test_scores_equal_scikit_learn():
    batches = _stream()
    metric = ConfusionMatrixMetric(TABLE)
    for labels, logits in batches:
        metric.update_state(labels, logits)
    y, p = _flat(batches)
    np.testing.assert_array_equal(metric.confusion.numpy(), confusion_matrix(y, p, labels=range(C)))
    scores = metric.scores()
    present = sorted(set(y) | set(p))
    assert 3 in present and 5 not in present  # 3 is predicted, never labelled
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, p, labels=present, zero_division=0
    )
    iou = jaccard_score(y, p, labels=present, average=None, zero_division=0)
    names = [TABLE.names[c] for c in present]
    for key, ref in (("precision", precision), ("recall", recall), ("f1", f1), ("iou", iou)):
        np.testing.assert_allclose([scores[f"{key}/{n}"] for n in names], ref, atol=1e-6)
        np.testing.assert_allclose(scores[f"{key}/mean_all"], ref.mean(), atol=1e-6)
        face = [v for c, v in zip(present, ref) if c in TABLE.face_classes]
        np.testing.assert_allclose(scores[f"{key}/mean_face"], np.mean(face), atol=1e-6)
        assert np.isnan(scores[f"{key}/e"])  # absent everywhere: no score, not in the means
    np.testing.assert_allclose(scores["pixel_accuracy"], (y == p).mean(), atol=1e-6)
    result = metric.result()
    np.testing.assert_allclose(result["miou_face"], scores["iou/mean_face"], atol=1e-6)
    np.testing.assert_allclose(result["mf1_face"], scores["f1/mean_face"], atol=1e-6)
    metric.reset_state()
    assert metric.confusion.numpy().sum() == 0


def test_mean_iou_equals_keras_mean_iou():
    batches = _stream(1)
    ours, keras_miou = ConfusionMatrixMetric(TABLE), keras.metrics.MeanIoU(
        C, ignore_class=IGNORE_LABEL, sparse_y_pred=False)
    for labels, logits in batches:
        ours.update_state(labels, logits)
        keras_miou.update_state(labels, logits)
    np.testing.assert_allclose(ours.scores()["iou/mean_all"], keras_miou.result(), atol=1e-6)


def test_same_result_under_mirrored_strategy():
    batches = _stream(2, shape=(4, 8, 8))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        metric = ConfusionMatrixMetric(TABLE)

    @tf.function
    def step(labels, logits):
        metric.update_state(labels, logits)

    for labels, logits in batches:
        halves = strategy.experimental_distribute_values_from_function(
            lambda ctx: (labels[2 * ctx.replica_id_in_sync_group:][:2],
                         logits[2 * ctx.replica_id_in_sync_group:][:2]))
        strategy.run(step, args=halves)
    single = ConfusionMatrixMetric(TABLE)
    for labels, logits in batches:
        single.update_state(labels, logits)
    np.testing.assert_array_equal(metric.confusion.numpy(), single.confusion.numpy())
    assert metric.scores() == pytest.approx(single.scores(), nan_ok=True)


def test_metric_round_trips_through_config():
    metric = ConfusionMatrixMetric(TABLE)
    again = ConfusionMatrixMetric.from_config(metric.get_config())
    assert again.class_table == TABLE


def test_the_published_mean_f1_is_scikit_learns_over_the_classes_but_background():
    """FaRL's and SegFace's figure: F1 per class over the whole split, the mean over
    every class but the background; a class with no pixels at all is left out (the
    papers' sets have none) and named."""
    from facepars.training.metrics import published_mean_f1

    y, p = _flat(_stream(seed=2))
    cm = confusion_matrix(y, p, labels=range(C))
    kept = [c for c in range(1, C) if c in set(y) | set(p)]
    f1 = precision_recall_fscore_support(y, p, labels=kept, zero_division=0)[2]
    value, absent = published_mean_f1(cm)
    assert absent == [5]
    assert value == pytest.approx(f1.mean(), abs=1e-12)
