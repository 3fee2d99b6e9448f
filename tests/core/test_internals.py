"""Each Keras (and tf.distribute) internal facepars leans on still exists and still
means what facepars.core.internals assumes: an upgrade that changes one fails here."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.distribute.collective_all_reduce_strategy import (
    CollectiveAllReduceExtended,
)

from facepars.core import internals


def _ema_reference(grads, w, momentum=0.9):
    ema = None
    for g in grads:
        w = w - 0.1 * np.array(g)
        ema = w if ema is None else momentum * ema + (1 - momentum) * w
    return ema


@pytest.mark.parametrize("loss_scale", [False, True])
def test_ema_variables_are_the_moving_averages_of_the_weights(loss_scale):
    optimizer = keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9,
                                     ema_overwrite_frequency=None)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    weight = keras.Variable(np.array([1.0, -2.0], np.float32))
    optimizer.build([weight])
    grads = ([0.5, 1.0], [-1.0, 0.25], [2.0, 2.0])
    for g in grads:  # scaled as a loss-scaled tape would give them
        optimizer.apply([tf.constant(g, tf.float32) * optimizer.scale_loss(1.0)], [weight])
    (ema,) = internals.ema_variables(optimizer)
    np.testing.assert_allclose(ema.numpy(), _ema_reference(grads, np.array([1.0, -2.0])),
                               rtol=1e-6)
    assert internals.ema_variables(keras.optimizers.SGD(0.1)) == []


def test_the_learning_rate_variable_is_the_one_the_optimizer_reads():
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build([keras.Variable(np.zeros(2, np.float32))])
    rate = internals.learning_rate_variable(keras.optimizers.LossScaleOptimizer(optimizer))
    assert any(rate is v for v in optimizer.variables)
    rate.assign(0.25)
    assert float(optimizer.learning_rate.numpy()) == 0.25
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert internals.learning_rate_variable(keras.optimizers.Adam(schedule)) is None


def test_multi_worker_mode_is_still_asked_of_the_strategy():
    assert callable(CollectiveAllReduceExtended._in_multi_worker_mode)
    assert not internals.is_multi_worker(tf.distribute.get_strategy())
    assert not internals.is_multi_worker(tf.distribute.OneDeviceStrategy("/cpu:0"))


def test_the_keras_callback_state_it_saves_still_exists():
    """Keras resets these in on_train_begin; a resumed run sets them back by name."""
    for cls, keys in internals.CALLBACK_STATE.items():
        cb = cls()
        cb.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
        cb.model.compile("sgd", "mse")
        cb.on_train_begin()
        for key in keys:
            assert hasattr(cb, key), (cls.__name__, key)


class Probe(internals.BuildOptimizerOnly, keras.Model):
    calls = 0

    def __init__(self):
        super().__init__()
        self.network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def call(self, x):
        return self.network(x)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        Probe.calls += 1
        super()._maybe_symbolic_build(iterator, data_batch)


def test_keras_still_builds_through_maybe_symbolic_build():
    """fit and evaluate call the override by its private name, and it builds the optimizer."""
    assert list(inspect.signature(keras.Model._maybe_symbolic_build).parameters) == \
        ["self", "iterator", "data_batch"]
    model = Probe()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = np.ones((4, 2), np.float32), np.ones((4, 1), np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    assert Probe.calls >= 1 and model.optimizer.built
    before = Probe.calls
    model.evaluate(x, y, verbose=0)
    assert Probe.calls > before


def test_the_application_builders_take_what_the_backbones_pass():
    resnet, efficientnet = internals.resnet, internals.efficientnet
    resnet_args = {"stack_fn", "preact", "use_bias", "include_top", "weights", "input_tensor",
                   "name"}
    assert resnet_args <= set(inspect.signature(resnet.ResNet).parameters)
    assert {"filters", "blocks", "stride1", "name"} <= \
        set(inspect.signature(resnet.stack_residual_blocks_v1).parameters)
    assert {"width_coefficient", "depth_coefficient", "default_size", "name",
            "include_top", "weights", "input_tensor"} <= \
        set(inspect.signature(efficientnet.EfficientNet).parameters)


def test_beams_local_runner_hands_the_pipeline_options_to_its_workers():
    """The FnApiRunner facepars builds carries the job's options in the provision
    info its workers read (without it they log every bundle at INFO, for one), and
    runs a pipeline."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to
    options = PipelineOptions(["--default_sdk_harness_log_level=ERROR"])
    runner = internals.provisioned_fn_api_runner(options)
    provided = runner._provision_info.provision_info.pipeline_options
    assert provided["beam:option:default_sdk_harness_log_level:v1"] == "ERROR"
    with beam.Pipeline(runner=runner, options=options) as p:
        assert_that(p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2),
                    equal_to([2, 4, 6]))
