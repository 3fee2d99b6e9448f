"""Optimizers and learning-rate schedules, built from a config's ``optimizer`` and ``schedule``.

The schedules other than ``plateau`` are multiplied by a variable scale
(``FaceParser.learning_rate_scale``, kept in the backups) so that a NaN restore
can lower the rate mid-run and the lowered rate survives a kill and resume.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from facepars.configs.common import OptimizerConfig, ScheduleConfig
from facepars.core.errors import ConfigError


class WarmupPolynomial(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then polynomial decay to ``end`` at ``total_steps``."""

    def __init__(self, peak, total_steps, warmup_steps=0, power=0.9, end=0.0):
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps
        self.power, self.end = power, end

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1) / max(self.warmup_steps, 1)
        progress = tf.clip_by_value((step - self.warmup_steps) /
                                    max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        decayed = (self.peak - self.end) * (1 - progress) ** self.power + self.end
        return tf.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return dict(peak=self.peak, total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                    power=self.power, end=self.end)


class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule times a variable factor, so a NaN restore can lower it mid-run."""

    def __init__(self, base: keras.optimizers.schedules.LearningRateSchedule, scale):
        self.base, self.scale = base, scale

    def __call__(self, step):
        return self.base(step) * tf.convert_to_tensor(self.scale)


def learning_rate(optimizer: OptimizerConfig, sched: ScheduleConfig, epochs: int,
                  steps_per_epoch: int, scale):
    """A float for the plateau schedule (its callback lowers it), else a schedule
    times ``scale`` (``FaceParser.learning_rate_scale``)."""
    lr = optimizer.learning_rate
    total = epochs * steps_per_epoch
    warmup = int(sched.warmup_epochs * steps_per_epoch)
    if sched.name == "plateau":
        return lr
    if sched.name == "poly":
        return ScaledSchedule(WarmupPolynomial(lr, total, warmup, sched.poly_power,
                                               sched.end_learning_rate), scale)
    if sched.name == "cosine":
        return ScaledSchedule(keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else lr, max(total - warmup, 1), alpha=0.0,
            warmup_target=lr if warmup else None, warmup_steps=warmup), scale)
    raise ConfigError(f"unknown schedule {sched.name!r}: plateau, poly or cosine")


def make_optimizer(o: OptimizerConfig, ema_momentum: float, lr) -> keras.optimizers.Optimizer:
    """``o``'s optimizer at ``lr``, keeping EMA weights when ``ema_momentum`` > 0."""
    common = dict(learning_rate=lr, use_ema=ema_momentum > 0,
                  ema_momentum=ema_momentum or 0.99)
    if o.name == "sgd":
        return keras.optimizers.SGD(momentum=o.momentum, nesterov=o.nesterov,
                                    weight_decay=o.weight_decay or None, **common)
    if o.name == "adamw":
        return keras.optimizers.AdamW(weight_decay=o.weight_decay, **common)
    raise ConfigError(f"unknown optimizer {o.name!r}: sgd or adamw")


def lower_learning_rate(optimizer: keras.optimizers.Optimizer, lr, factor: float) -> float:
    """Multiply the learning rate by ``factor`` (a variable or a ScaledSchedule)."""
    if isinstance(lr, ScaledSchedule):
        lr.scale.assign(lr.scale * factor)
    else:
        optimizer.learning_rate = (
            float(keras.ops.convert_to_numpy(optimizer.learning_rate)) * factor
        )
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
