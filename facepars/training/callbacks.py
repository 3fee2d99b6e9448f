"""Keras callbacks of a training run: what the user sees, and what keeps the run safe."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from facepars.core import files, visualize
from facepars.core.classes import ClassTable
from facepars.core.internals import ema_variables, inner_optimizer, learning_rate_variable
from facepars.models import rundir, to_model_input
from facepars.training.metrics import scores_from_confusion


class TrainingLog(keras.callbacks.Callback):
    """Adds learning rate, images/s and step time to the epoch logs, and logs one
    summary line per epoch (place first, so later callbacks see the additions).

    Steps are optimizer steps (``optimizer.iterations``), not callback calls:
    Keras calls the batch hooks once per ``steps_per_execution`` group.
    """

    def __init__(self, global_batch: int, epochs: int):
        super().__init__()
        self.global_batch, self.epochs = global_batch, epochs

    def _iterations(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._end = self._first_step = None

    def on_train_batch_begin(self, batch, logs=None):
        if self._start is None:
            self._first_step = self._iterations()
            self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        started = self._start is not None
        steps = self._iterations() - self._first_step if started else 0
        seconds = max(self._end - self._start, 1e-9) if started else float("nan")
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        logs["images_per_second"] = steps * self.global_batch / seconds
        logs["step_time"] = seconds / max(steps, 1)
        logging.info(
            "epoch %d/%d: loss %.4f, mIoU(face) %.4f | val loss %.4f, val mIoU(face) "
            "%.4f | lr %.3g, %.1f images/s",
            epoch + 1,
            self.epochs,
            logs.get("loss", math.nan),
            logs.get("miou_face", math.nan),
            logs.get("val_loss", math.nan),
            logs.get("val_miou_face", math.nan),
            logs["learning_rate"],
            logs["images_per_second"],
        )


@contextlib.contextmanager
def ema_weights(model):
    """The network holds its EMA weights inside the block (what is saved and drawn)."""
    pairs = list(zip(model.network.trainable_variables, ema_variables(model.optimizer)))

    def swap():
        for weight, average in pairs:
            value = weight.numpy()
            weight.assign(average.numpy())
            average.assign(value)

    swap()
    try:
        yield
    finally:
        swap()


class NanGuard(keras.callbacks.Callback):
    """On a NaN or Inf loss: restore the last good state, lower the learning rate
    and go on, at most ``retries`` times; then stop and say what happened.

    A restore, in every precision, puts back the network's weights (batch-norm
    statistics included) and the EMA copies from the same snapshot, so the EMA
    stays an average of weights the run really had; zeroes the optimizer's slots
    (momentum, Adam moments: they carry the step that diverged); and keeps the
    step count (the schedule goes on where it was) and the mixed_float16 loss
    scale, which the LossScaleOptimizer has already halved at each non-finite
    step (re-initialised only if it is itself no longer a positive number).
    """

    def __init__(self, retries: int, lower_learning_rate, factor: float):
        super().__init__()
        self.retries, self.lower_learning_rate, self.factor = retries, lower_learning_rate, factor
        self.restores = 0
        self.failure: str | None = None
        self._good = None

    def get_state(self) -> dict:
        return {"restores": self.restores}

    def set_state(self, state: dict) -> None:
        self.restores = state["restores"]

    def _snapshot(self):
        self._good = ([v.numpy() for v in self.model.network.weights],
                      [v.numpy() for v in ema_variables(self.model.optimizer)])

    def on_epoch_begin(self, epoch, logs=None):
        if self._good is None:  # first epoch of this process: after the backup was restored
            self._snapshot()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        bad = [k for k in ("loss", "val_loss") if not math.isfinite(logs.get(k, 0.0))]
        if bad:
            self._recover(logs[bad[0]], f"{bad[0]} at the end of epoch {epoch + 1}")
        else:
            self._snapshot()

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self._recover(loss, f"loss at step {int(self.model.optimizer.iterations.numpy())}")

    def _recover(self, value, where: str):
        if self.restores >= self.retries:
            self.failure = (f"{where} was {value} again after {self.restores} restore(s) with the "
                            f"learning rate lowered by {self.factor} each time; stopping. Lower "
                            "the learning rate or check the data.")
            logging.error("%s", self.failure)
            self.model.stop_training = True
            return
        self.restores += 1
        self._restore()
        new_lr = self.lower_learning_rate(self.factor)
        self.model.reset_metrics()
        logging.warning("%s was %s: restored the last good weights and lowered the learning "
                        "rate to %.3g (restore %d of %d)", where, value, new_lr, self.restores,
                        self.retries)

    def _restore(self):
        optimizer = self.model.optimizer
        weights, ema = self._good
        ema_vars = ema_variables(optimizer)
        for variable, value in zip(self.model.network.weights + ema_vars, weights + ema):
            variable.assign(value)
        inner = inner_optimizer(optimizer)
        kept = {id(v) for v in ema_vars + [inner.iterations]}
        rate = learning_rate_variable(optimizer)  # a float rate is an optimizer variable
        if rate is not None:
            kept.add(id(rate))
        for variable in inner.variables:
            if id(variable) not in kept:
                variable.assign(tf.zeros_like(variable))
        scale = getattr(optimizer, "dynamic_scale", None)
        if scale is not None and not (math.isfinite(float(scale.numpy())) and scale.numpy() > 0):
            scale.assign(optimizer.initial_scale)


class NetworkCheckpoints(keras.callbacks.Callback):
    """``last.keras`` every epoch and ``best.keras`` at the best val face-class mIoU.

    The network alone is saved (built-in layers only: loads with safe_mode=True,
    without facepars), with its EMA weights when the run keeps them (what the
    validation scores were measured on); ``best.json`` records the epoch and
    scores of the best.
    """

    def __init__(self, model_dir: str, monitor: str = "val_miou_face"):
        super().__init__()
        self.model_dir, self.monitor = model_dir, monitor
        self.best = -math.inf

    def get_state(self) -> dict:
        return {"best": float(self.best) if math.isfinite(self.best) else None}

    def set_state(self, state: dict) -> None:
        self.best = -math.inf if state["best"] is None else state["best"]

    def _save(self, names: list[str]):
        """Save once locally, copy beside each target, rename: never half a checkpoint,
        and one serialisation when last is also the best."""
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "network.keras")
            with ema_weights(self.model):
                self.model.network.save(local)
            for name in names:
                path = files.join(self.model_dir, name)
                tf.io.gfile.copy(local, path + ".tmp", overwrite=True)
                tf.io.gfile.rename(path + ".tmp", path, overwrite=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        score = logs.get(self.monitor, math.nan)
        improved = math.isfinite(score) and score > self.best
        self._save([rundir.LAST, rundir.BEST] if improved else [rundir.LAST])
        if improved:
            self.best = score
            record = {"epoch": epoch + 1, self.monitor: score,
                      **{k: float(v) for k, v in logs.items() if k.startswith("val_")}}
            files.write_json_atomic(rundir.path(self.model_dir, rundir.BEST_SCORES), record)


class EpochHistory(keras.callbacks.Callback):
    """``history.csv``, one row per finished epoch, consistent with resumption.

    On (re)start, rows of the epoch being resumed and later are dropped: a run
    killed after writing a row but before its backup reruns that epoch, and the
    file still holds every epoch exactly once (facepars.training.loop backs up after
    every callback).
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self._started = False

    def _rows(self) -> list[dict]:
        if not tf.io.gfile.exists(self.path):
            return []
        with tf.io.gfile.GFile(self.path) as f:
            return list(csv.DictReader(f))

    def _write(self, rows: list[dict]) -> None:
        keys = sorted({k for row in rows for k in row} - {"epoch"})
        with tf.io.gfile.GFile(self.path + ".tmp", "w") as f:
            writer = csv.DictWriter(f, ["epoch"] + keys)
            writer.writeheader()
            writer.writerows(rows)
        tf.io.gfile.rename(self.path + ".tmp", self.path, overwrite=True)

    def on_epoch_begin(self, epoch, logs=None):
        if not self._started:
            self._started = True
            self._write([r for r in self._rows() if int(r["epoch"]) < epoch])

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        self._write(self._rows() + [row])


class Summaries(keras.callbacks.Callback):
    """TensorBoard extras: per-class scores under the class names, the confusion
    matrix as a heatmap, and a fixed set of validation overlays (ground truth |
    prediction) each epoch. Scalars from the epoch logs are Keras's TensorBoard's."""

    def __init__(self, log_dir: str | None, table: ClassTable, val_images: np.ndarray,
                 val_masks: np.ndarray):
        """``log_dir=None`` on non-chief workers: they read the (summed) confusion
        matrices too, since under MultiWorkerMirroredStrategy a read is a
        collective every worker must join, but write nothing."""
        super().__init__()
        self.table = table
        self.val_images, self.val_masks = val_images, val_masks
        self.writers = (
            {}
            if log_dir is None
            else {
                s: tf.summary.create_file_writer(files.join(log_dir, s))
                for s in ("train", "validation")
            }
        )
        self._train_scores = None
        self._train_confusion = None

    def on_test_begin(self, logs=None):
        # Keras resets the metrics right after this: keep the training epoch's matrix.
        self._train_confusion = self.model.confusion.confusion.numpy()

    def on_epoch_end(self, epoch, logs=None):
        matrices = {"validation": self.model.confusion.confusion.numpy()}
        if self._train_confusion is not None:
            matrices["train"] = self._train_confusion
        if not self.writers:
            return
        for split, cm in matrices.items():
            with self.writers[split].as_default(step=epoch):
                for name, value in scores_from_confusion(cm, self.table).items():
                    if math.isfinite(value):
                        tf.summary.scalar(f"per_class/{name}", value)
                png = visualize.confusion_png(cm, self.table, f"{split}, epoch {epoch + 1}")
                tf.summary.image("confusion_matrix", tf.io.decode_png(png)[None], max_outputs=1)
        if len(self.val_images):
            with ema_weights(self.model):
                logits = self.model.network(to_model_input(self.val_images), training=False)
            predicted = np.argmax(logits, -1)
            pictures = np.stack(
                [
                    np.concatenate(
                        [
                            visualize.overlay(img, truth, self.table),
                            visualize.overlay(img, pred, self.table),
                        ],
                        1,
                    )
                    for img, truth, pred in zip(self.val_images, self.val_masks, predicted)
                ]
            )
            with self.writers["validation"].as_default(step=epoch):
                tf.summary.image("overlays/ground_truth|prediction", pictures,
                                 max_outputs=len(pictures))
        for writer in self.writers.values():
            writer.flush()


def weights_checksum(model: keras.Model) -> str:
    """A short digest of all weights: lets workers and reruns compare models."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()[:16]
