"""Optimizers and schedules against hand-computed values."""

import keras
import numpy as np
import tensorflow as tf

from facepars.configs import smoke
from facepars.core import internals
from facepars.training import optimization


def test_schedules_give_the_documented_learning_rates():
    cfg = smoke.get_config()
    cfg.epochs, cfg.optimizer.learning_rate = 4, 0.2
    cfg.schedule.warmup_epochs = 1.0
    scale = keras.Variable(1.0)
    steps = np.array([0, 5, 10, 20, 30, 39])
    for name in ("poly", "cosine"):
        cfg.schedule.name = name
        lr = optimization.learning_rate(cfg.optimizer, cfg.schedule, cfg.epochs, 10, scale)
        got = np.array([float(lr(s)) for s in steps])
        progress = np.clip((steps - 10) / 30, 0, 1)
        decayed = (0.2 * (1 - progress) ** 0.9 if name == "poly"
                   else 0.5 * 0.2 * (1 + np.cos(np.pi * progress)))
        warm = 0.2 * (steps + 1) / 10 if name == "poly" else 0.2 * steps / 10
        np.testing.assert_allclose(got, np.where(steps < 10, warm, decayed), rtol=1e-5, atol=1e-7)
        scale.assign(0.5)
        np.testing.assert_allclose(float(lr(20)), got[3] * 0.5, rtol=1e-6)
        scale.assign(1.0)


def test_sgd_with_ema_matches_a_hand_computed_run():
    cfg = smoke.get_config()
    cfg.ema_momentum, cfg.optimizer.momentum = 0.9, 0.5
    optimizer = optimization.make_optimizer(cfg.optimizer, cfg.ema_momentum, 0.1)
    weight = keras.Variable(np.array([1.0, -2.0], np.float32))
    optimizer.build([weight])
    w, velocity, ema = np.array([1.0, -2.0]), np.zeros(2), None
    for grad in ([0.5, 1.0], [-1.0, 0.25], [2.0, 2.0]):
        optimizer.apply([tf.constant(grad, tf.float32)], [weight])
        velocity = 0.5 * velocity - 0.1 * np.array(grad)
        w = w + velocity
        ema = w if ema is None else 0.9 * ema + 0.1 * w
    np.testing.assert_allclose(weight.numpy(), w, rtol=1e-6)
    np.testing.assert_allclose(internals.ema_variables(optimizer)[0].numpy(), ema, rtol=1e-6)
