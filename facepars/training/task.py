"""The training task: a Keras model with a custom train_step.

``FaceParser`` wraps a network from ``facepars.models`` with the Keras
"customise fit" pattern, so ``fit``, callbacks, progress bars and every
tf.distribute strategy work unchanged. One step, all on the device:

    uint8 batch -> [0, 1] float -> augmentation -> forward (compute dtype)
    -> fused loss (float32, global-batch sums) -> scaled gradients -> update
    -> confusion-matrix update, and the stop flag (preemption)

Nothing leaves the device inside the step; the metrics are read by Keras
between steps.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from facepars.configs.common import AugmentConfig, LossConfig
from facepars.core import internals
from facepars.core.classes import ClassTable
from facepars.data.augment import Augmenter
from facepars.models import to_model_input
from facepars.training.loop import STOP_KEY
from facepars.training.losses import TERMS, fused_loss
from facepars.training.metrics import ConfusionMatrixMetric


class FaceParser(internals.BuildOptimizerOnly, keras.Model):
    """Train and evaluate ``network`` on ``{"image": uint8, "mask": uint8}`` batches."""

    def __init__(self, network: keras.Model, class_table: ClassTable, loss_cfg: LossConfig,
                 augment: AugmentConfig, fill_label: int = 0, seed: int = 0,
                 frozen: list[bool] | None = None, frozen_steps: int = 0):
        super().__init__(name="face_parser")
        self.network = network
        # Per trainable variable, whether it holds still for the first frozen_steps
        # steps (the backbone while a fine-tune's new head settles; see train_step).
        self.frozen = frozen or [False] * len(network.trainable_variables)
        self.frozen_steps = frozen_steps
        self.class_table = class_table
        self.term_weights = (loss_cfg.cross_entropy, loss_cfg.dice, loss_cfg.jaccard)
        self.class_weights = loss_cfg.class_weights
        self.augmenter = Augmenter(augment, class_table, fill_label)
        self.seed = seed
        self.confusion = ConfusionMatrixMetric(class_table)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss",) + TERMS}
        # What a NaN restore multiplies a scheduled learning rate by: a weight of
        # the model, so that backups keep a lowered rate across a kill and resume.
        self.learning_rate_scale = self.add_weight(shape=(), initializer="ones", trainable=False,
                                                   name="learning_rate_scale")
        # Set on the host when this worker is asked to stop (facepars.training.loop.Preemption);
        # reported in every step's logs, which Keras reduces over all workers.
        self.stop_requested = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                              name="stop_requested")

    def call(self, images, training=False):
        return self.network(images, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values()) + [self.confusion]

    def _loss(self, masks, logits):
        return fused_loss(masks, logits, self.term_weights, self.class_weights)

    def _record(self, terms, masks, logits, extra=None):
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        self.confusion.update_state(masks, logits)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        logs.update(self.confusion.result())
        logs.update(extra or {})
        if internals.is_multi_worker(self.distribute_strategy):
            # Keras 3 reduces logs with strategy.reduce("MEAN", v, axis=0) under
            # MultiWorkerMirroredStrategy, which fails on scalars (TensorFlow issue
            # 72388); a length-1 axis reduces back to the scalar.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def _step_seed(self) -> tf.Tensor:
        """A different, reproducible augmentation seed for every step and replica."""
        ctx = tf.distribute.get_replica_context()
        replica = tf.cast(ctx.replica_id_in_sync_group if ctx else 0, tf.int64)
        step = tf.cast(self.optimizer.iterations, tf.int64)
        count = ctx.num_replicas_in_sync if ctx else 1
        return tf.cast(
            tf.stack([tf.constant(self.seed, tf.int64), step * count + replica]), tf.int32
        )

    def train_step(self, data):
        images, masks = self.augmenter(
            to_model_input(data["image"]), data["mask"], self._step_seed()
        )
        with tf.GradientTape() as tape:
            logits = self.network(images, training=True)
            terms = self._loss(masks, logits)
            # Every replica holds the global-batch loss (see facepars.training.losses); the
            # 1/replicas scale makes the summed replica gradients its gradient.
            scaled = terms["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(scaled)  # dynamic loss scale under float16
        variables = self.network.trainable_variables
        gradients = tape.gradient(scaled, variables)
        if self.frozen_steps:
            # Zero gradients hold the frozen variables still under every optimizer
            # (momentum and Adam's moments stay zero too), in one compiled step: no
            # retrace or rebuilt optimizer when they thaw, and the step count that
            # decides it is in every backup, so a resumed run thaws at the same step.
            thawed = self.optimizer.iterations >= self.frozen_steps
            gradients = [tf.where(thawed, g, tf.zeros_like(g)) if frozen else g
                         for g, frozen in zip(gradients, self.frozen)]
        self.optimizer.apply_gradients(zip(gradients, variables))
        # Keras reduces a step's logs over the replicas (the mean over every worker's
        # replicas under MultiWorkerMirroredStrategy; the first replica on a TPU, whose
        # one host sets every core's copy): all workers read the same flag after the
        # same step, with no collective of its own.
        return self._record(terms, masks, logits,
                            {STOP_KEY: tf.convert_to_tensor(self.stop_requested)})

    def test_step(self, data):
        logits = self.network(to_model_input(data["image"]), training=False)
        return self._record(self._loss(data["mask"], logits), data["mask"], logits)

    def predict_step(self, data):
        images = data["image"] if isinstance(data, dict) else data
        return self.network(to_model_input(images), training=False)
