"""Every place facepars leans on Keras, tf.distribute or Apache Beam beyond their
public API, and why.

Each is a name that can change in any release without notice. They live here
only, each with the reason no public API serves, and tests/core/test_internals.py
checks each still exists and still means what facepars assumes: an upgrade that
changes one fails there, by name, instead of somewhere deep in a training run or
a Beam job. setup.cfg pins Keras to the minor versions tested and Beam to its
major version.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# The builders under keras.applications.ResNet50 / EfficientNetB0. The public
# constructors fix the width and build every stage, while facepars needs the same
# graphs narrower (tests, demos) and ResNet-50 cut after conv3 (PSPNet). The layer
# names stay the applications', so their ImageNet weights load by name.
from keras.src.applications import efficientnet, resnet  # noqa: F401  (used by models)


def is_multi_worker(strategy) -> bool:
    """True under a MultiWorkerMirroredStrategy with more than one worker.

    The private ``_in_multi_worker_mode`` is what Keras itself asks; a one-worker
    MultiWorkerMirroredStrategy (a local run of a cluster config) reduces logs
    like a MirroredStrategy, and the number of replicas cannot tell the two apart.
    """
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def inner_optimizer(optimizer):
    """The optimizer that holds the slots and EMA (inside a LossScaleOptimizer)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def ema_variables(optimizer) -> list:
    """The EMA copies of the trainable weights, in their order ([] without EMA).

    Keras keeps them in a private attribute with no public accessor; its own
    SwapEMAWeights callback reads the same attribute.
    """
    inner = inner_optimizer(optimizer)
    return list(inner._model_variables_moving_average) if getattr(inner, "use_ema", False) else []


def learning_rate_variable(optimizer):
    """The variable holding a float learning rate, or None for a schedule.

    ``optimizer.learning_rate`` reads its value (or calls the schedule); a NaN
    restore that zeroes the optimizer's state must know which variable to keep.
    """
    rate = inner_optimizer(optimizer)._learning_rate
    return rate if isinstance(rate, keras.Variable) else None


# The state of Keras's stateful callbacks: what on_train_begin resets and a
# resumed run must get back. Public attributes, but undocumented as state.
CALLBACK_STATE = {
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
}


class BuildOptimizerOnly:
    """A keras.Model mixin: building before the first step only builds the optimizer.

    Keras's ``_maybe_symbolic_build`` (called by fit and evaluate before their
    first step) reduces a first batch across replicas to build the model lazily,
    and TensorFlow's collective reduce takes no nested batch: under
    MultiWorkerMirroredStrategy it fails on facepars's dict batches. The network
    and metrics are built before training, so only the optimizer is left.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.network.trainable_variables)


def provisioned_fn_api_runner(options):
    """Beam's FnApiRunner with ``options`` (a PipelineOptions) provisioned to its
    workers, built as Beam's DirectRunner builds its fallback: a runner made with
    ``FnApiRunner()`` alone does not hand the options to its worker processes (their
    log level, for one). ``fn_runner``, ``ExtendedProvisionInfo`` and
    ``JobServiceHandle.encode_pipeline_options`` are Beam's runner internals; the
    public way to get this runner is the DirectRunner, which first fetches and runs
    Prism instead (facepars.data.beam.pipeline says why that is not wanted)."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle
    provided = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=provided)))
