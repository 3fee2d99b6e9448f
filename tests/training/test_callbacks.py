"""What the training callbacks record and restore, checked against hand-set state."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from facepars.configs import smoke
from facepars.configs.common import NO_AUGMENTATION
from facepars.core import internals
from facepars.core.classes import TAXONOMIES
from facepars.models import build_model, load_model
from facepars.training import callbacks, task

TABLE = TAXONOMIES["seed8"].table


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _parser(precision, strategy=None):
    keras.mixed_precision.set_global_policy(precision)
    with (strategy or tf.distribute.get_strategy()).scope():
        parser = task.FaceParser(build_model("lraspp_mobilenetv3", 8, 64, width=0.25), TABLE,
                                 smoke.get_config().loss, NO_AUGMENTATION)
        parser.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, use_ema=True))
        parser(tf.zeros((1, 64, 64, 3)))
        parser.optimizer.build(parser.network.trainable_variables)
    return parser


def _copies(variable):
    """Every replica's copy of a variable (one, off a distribution strategy)."""
    value = getattr(variable, "value", variable)
    return [copy.numpy() for copy in getattr(value, "values", [value])]


@pytest.mark.parametrize("precision,replicas", [
    ("float32", 1), ("mixed_float16", 1), ("mixed_bfloat16", 1),
    ("float32", 2), ("mixed_float16", 2)])
def test_nan_restore_puts_back_weights_and_ema_keeps_scale_and_step(precision, replicas):
    """On one device and under MirroredStrategy over two logical CPUs, where each
    replica's copy of every variable must come back (a restore that wrote only
    the first copy would leave the other replica on NaN)."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if replicas == 2 else None
    parser = _parser(precision, strategy)
    assert len(_copies(parser.network.weights[0])) == replicas
    guard = callbacks.NanGuard(3, lambda factor: 0.05, 0.5)
    guard.set_model(parser)
    optimizer = parser.optimizer
    ema = internals.ema_variables(optimizer)
    for i, average in enumerate(ema):  # EMA different from the weights, as after training
        average.assign(tf.fill(average.shape, float(i)))
    good_weights = [w.numpy() for w in parser.network.weights]
    good_ema = [v.numpy() for v in ema]
    guard.on_epoch_begin(0)

    # Divergence: NaN everywhere the step can write.
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    for variable in parser.network.weights + inner.variables:
        if variable is not inner.iterations and variable.dtype.startswith("float"):
            variable.assign(tf.fill(variable.shape, np.nan))
    inner.iterations.assign(7)
    if precision == "mixed_float16":
        optimizer.dynamic_scale.assign(256.0)  # halved on the way down, still usable
    guard.on_train_batch_end(0, {"loss": float("nan")})

    assert guard.restores == 1
    for variable, value in zip(parser.network.weights + ema, good_weights + good_ema):
        for copy in _copies(variable):
            np.testing.assert_array_equal(copy, value)
    slots = [v for v in inner.variables if v is not inner.iterations
             and all(v is not e for e in ema)
             and v is not internals.learning_rate_variable(optimizer)]
    assert slots and all(not np.any(copy) for v in slots for copy in _copies(v))  # momentum
    assert {int(copy) for copy in _copies(inner.iterations)} == {7}
    if precision == "mixed_float16":
        assert {float(copy) for copy in _copies(optimizer.dynamic_scale)} == {256.0}


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_nan_validation_loss_restores_the_last_good_epoch():
    """A finite training loss and a NaN val_loss at an epoch's end is divergence too:
    weights back to the last good snapshot, one restore, the rate lowered; the
    next clean epoch end takes a new snapshot."""
    parser = _parser("float32")
    lowered = []
    guard = callbacks.NanGuard(3, lambda factor: lowered.append(factor) or 0.05, 0.5)
    guard.set_model(parser)
    guard.on_epoch_begin(0)
    good = [w.numpy() for w in parser.network.weights]
    for variable in parser.network.trainable_weights:
        variable.assign(variable + 1.0)  # what the epoch's steps did
    guard.on_epoch_end(0, {"loss": 0.7, "val_loss": float("nan")})
    assert guard.restores == 1 and lowered == [0.5] and not parser.stop_training
    for variable, value in zip(parser.network.weights, good):
        np.testing.assert_array_equal(variable.numpy(), value)
    guard.on_epoch_end(1, {"loss": 0.6, "val_loss": 0.9})
    assert guard.restores == 1


def test_images_per_second_counts_optimizer_steps_not_callback_calls(monkeypatch):
    """steps_per_execution=4: Keras calls the batch hooks once per 4 steps."""
    clock = _Clock()
    monkeypatch.setattr(callbacks.time, "perf_counter", clock)
    parser = _parser("float32")
    log = callbacks.TrainingLog(global_batch=16, epochs=1)
    log.set_model(parser)
    log.on_epoch_begin(0)
    for execution in range(2):  # 2 executions of 4 steps, 1 s each
        log.on_train_batch_begin(execution * 4)
        parser.optimizer.iterations.assign_add(4)
        clock.now += 1.0
        log.on_train_batch_end(execution * 4 + 3)
    logs = {}
    log.on_epoch_end(0, logs)
    assert logs["images_per_second"] == pytest.approx(8 * 16 / 2.0)
    assert logs["step_time"] == pytest.approx(2.0 / 8)


def test_checkpoints_keep_the_best_epochs_ema_weights_in_best_and_the_latest_in_last(tmp_path):
    """Val scores 0.2, 0.5, 0.3 over three epochs, the weights moved before each: best.keras
    holds epoch 2's EMA weights and best.json its scores; last.keras epoch 3's; the live
    weights are back after each save."""
    parser = _parser("float32")
    saver = callbacks.NetworkCheckpoints(str(tmp_path))
    saver.set_model(parser)
    ema = internals.ema_variables(parser.optimizer)
    for epoch, score in enumerate((0.2, 0.5, 0.3)):
        for average in ema:  # the EMA of this epoch: every value epoch + 1
            average.assign(tf.fill(average.shape, float(epoch + 1)))
        live = [w.numpy() for w in parser.network.trainable_weights]
        saver.on_epoch_end(epoch, {"val_miou_face": score, "val_loss": 1.0 - score})
        for now, before in zip(parser.network.trainable_weights, live):
            np.testing.assert_array_equal(now.numpy(), before)
    for name, value in (("best.keras", 2.0), ("last.keras", 3.0)):
        saved = load_model(str(tmp_path / name)).trainable_weights
        assert all(np.all(w.numpy() == value) for w in saved), name
    assert json.load(open(tmp_path / "best.json")) == {"epoch": 2, "val_miou_face": 0.5,
                                                        "val_loss": 0.5}
