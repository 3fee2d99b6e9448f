"""Streaming segmentation metrics from one confusion matrix per split.

Batch-averaged scores (what the notebook's segmentation_models metrics logged) weigh
a batch with three eye pixels like one with three thousand. Here every batch adds
to one (C, C) confusion matrix of pixel counts; precision, recall, F1 (= Dice) and
IoU (= Jaccard) per class, their means and pixel accuracy all come from it at the
end (docs/training.md, "Metrics").

The matrix is an int64 Keras metric variable with ``aggregation="sum"``: each
replica adds its own pixels and reading the result sums the replicas, so it is
right under MirroredStrategy, MultiWorkerMirroredStrategy and TPUStrategy.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from facepars.core.classes import IGNORE_LABEL, ClassTable
from facepars.training.losses import label_one_hot

SCORES = ("precision", "recall", "f1", "iou")


def batch_confusion(labels: tf.Tensor, predictions: tf.Tensor, num_classes: int,
                    ignore_label: int = IGNORE_LABEL) -> tf.Tensor:
    """(C, C) int64 counts, rows = label, columns = prediction, ignore pixels dropped.

    A one-hot matrix product rather than a scatter: it runs on every accelerator
    (the MXU on TPU) and is exact while a cell stays below 2^24 pixels per call.
    """
    rows = label_one_hot(labels, num_classes, ignore_label)  # ignore pixels: zero rows
    cols = tf.one_hot(tf.reshape(tf.cast(predictions, tf.int32), [-1]), num_classes)
    return tf.cast(tf.matmul(rows, cols, transpose_a=True), tf.int64)


@tf.function(jit_compile=True, autograph=False)  # no Python branch to convert
def _logits_confusion(labels: tf.Tensor, logits: tf.Tensor, num_classes: int) -> tf.Tensor:
    """``batch_confusion`` of the logits' argmax, compiled with XLA even when the
    step around it is not: op by op, TensorFlow's argmax over a last axis of a
    few classes and the two one-hot encodings are each a slow pass over the
    batch, which XLA fuses into one."""
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return batch_confusion(labels, predictions, num_classes)


def scores_from_confusion(confusion: np.ndarray, table: ClassTable) -> dict[str, float]:
    """Per-class and mean scores from a confusion matrix, named for logging.

    Keys: ``{precision,recall,f1,iou}/{class name}``, ``.../mean_face`` (the face
    classes, the literature's mean), ``.../mean_all`` (every class, the notebook's),
    and ``pixel_accuracy``. A class with no pixels in labels or predictions has
    NaN scores and is left out of the means; a class with pixels on one side only
    scores 0 where the ratio is 0/0 (as scikit-learn's ``zero_division=0``).
    """
    cm = np.asarray(confusion, np.float64)
    tp = np.diag(cm)
    labelled, predicted = cm.sum(1), cm.sum(0)
    fp, fn = predicted - tp, labelled - tp
    present = (labelled + predicted) > 0

    def ratio(num, den):
        out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return np.where(present, out, np.nan)

    per_class = {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
                 "f1": ratio(2 * tp, 2 * tp + fp + fn), "iou": ratio(tp, tp + fp + fn)}
    face = np.zeros(table.num_classes, bool)
    face[list(table.face_classes)] = True
    out = {}
    for score, values in per_class.items():
        for name, value in zip(table.names, values):
            out[f"{score}/{name}"] = float(value)
        for group, members in (("mean_face", face & present), ("mean_all", present)):
            out[f"{score}/{group}"] = (
                float(values[members].mean()) if members.any() else float("nan")
            )
    out["pixel_accuracy"] = float(tp.sum() / cm.sum()) if cm.sum() else float("nan")
    return out


def published_mean_f1(confusion: np.ndarray) -> tuple[float, list[int]]:
    """The figure face-parsing papers report (FaRL, SegFace on CelebAMask-HQ and LaPa):
    F1 = 2TP / (labelled + predicted) per class from one confusion matrix over the
    whole test set, averaged over every class but the background (hair, neck and
    cloth included). Returns it and the classes with no pixels on either side,
    whose F1 is undefined (0/0) and which it leaves out; the papers' sets have none."""
    cm = np.asarray(confusion, np.float64)
    both = cm.sum(0) + cm.sum(1)
    absent = [c for c in range(1, len(cm)) if both[c] == 0]
    kept = [c for c in range(1, len(cm)) if both[c] > 0]
    if not kept:
        return float("nan"), absent
    return float(np.mean(2 * np.diag(cm)[kept] / both[kept])), absent


@keras.saving.register_keras_serializable("facepars")
class ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates the confusion matrix of a split from labels and logits.

    ``result()`` gives the two numbers the progress bar shows (face-class mean
    IoU and F1); ``scores()`` gives every named score for TensorBoard and reports.
    """

    def __init__(self, class_table: ClassTable | dict, name: str = "confusion", **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_table = (class_table if isinstance(class_table, ClassTable)
                            else ClassTable.from_json(class_table))
        n = self.class_table.num_classes
        self.confusion = self.add_variable(shape=(n, n), initializer="zeros", dtype="int64",
                                           aggregation="sum", name="confusion")

    def update_state(self, labels, logits, sample_weight=None):
        del sample_weight  # ignore pixels carry the masking
        self.confusion.assign_add(_logits_confusion(labels, logits,
                                                    self.class_table.num_classes))

    def result(self):
        """Face-class mean IoU and F1 in graph ops (what Keras logs every step).

        float32, not float64: this runs inside the step and TPUs have no float64.
        Counts above 2^24 lose their last digits in float32, a relative error
        under 1e-7 on the ratios; the reports use ``scores()`` (exact, on the host).
        """
        cm = tf.cast(self.confusion, tf.float32)
        tp = tf.linalg.diag_part(cm)
        labelled, predicted = tf.reduce_sum(cm, 1), tf.reduce_sum(cm, 0)
        face = np.zeros(self.class_table.num_classes, bool)
        face[list(self.class_table.face_classes)] = True
        present = tf.logical_and(labelled + predicted > 0, face)
        union = labelled + predicted - tp
        iou = tf.math.divide_no_nan(tp, union)
        f1 = tf.math.divide_no_nan(2 * tp, labelled + predicted)
        n = tf.maximum(tf.reduce_sum(tf.cast(present, tf.float32)), 1.0)
        mean = lambda v: tf.reduce_sum(tf.where(present, v, 0.0)) / n
        return {"miou_face": mean(iou), "mf1_face": mean(f1)}

    def scores(self) -> dict[str, float]:
        return scores_from_confusion(self.confusion.numpy(), self.class_table)

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        return {**super().get_config(), "class_table": self.class_table.to_json()}


def score_table(scores: dict, table: ClassTable, pixels=None) -> str:
    """Per-class precision, recall, F1, IoU (and pixels), both means, pixel accuracy."""
    lines = [f"{'class':<16}{'precision':>10}{'recall':>10}{'F1':>10}{'IoU':>10}"
             + (f"{'pixels':>14}" if pixels is not None else "")]
    lines.append("-" * len(lines[0]))
    rows = [(n, n) for n in table.names] + [
        ("mean (face)", "mean_face"),
        ("mean (all)", "mean_all"),
    ]
    for i, (label, key) in enumerate(rows):
        if key == "mean_face":
            lines.append("-" * len(lines[0]))
        row = f"{label:<16}" + "".join(f"{scores[f'{s}/{key}']:>10.4f}"
                                       for s in SCORES)
        if pixels is not None and i < table.num_classes:
            row += f"{int(pixels[i]):>14d}"
        lines.append(row)
    lines.append(f"pixel accuracy {scores['pixel_accuracy']:.4f}")
    return "\n".join(lines)
