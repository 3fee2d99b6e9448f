"""The training loop: Keras's own train step and callbacks, driven one step at a time,
so that a run can stop at any step and go on at the next one.

Why not ``keras.Model.fit``: fit starts every epoch at its first batch and resets
the metrics there, and its ``BackupAndRestore`` restores the epoch, not the step:
a run resumed from a mid-epoch backup replays the epoch from its first batch on
weights that already saw part of it (steps repeated, records seen twice, the
schedule run past its end). This loop is fit's loop (the same
``make_train_function``, callbacks, ``evaluate`` and History) with three
differences:

* it starts at any step: the input pipeline begins where that step reads
  (facepars.data.training_order.TrainingOrder), and a resumed epoch keeps the metric
  sums it had, so its history row equals an uninterrupted run's;
* ``Backup`` saves everything the next step depends on: weights, optimizer
  (step count, slots, EMA, loss scale), the learning-rate scale, the metric
  sums and the callbacks' state (plateau and early-stopping counters, the best
  score so far, NaN restores);
* ``Preemption`` turns SIGTERM (and a first Ctrl-C) into a stop at the next
  step boundary, agreed by every worker through the step's own logs (each
  replica reports its stop flag and Keras reduces the logs over all workers),
  then a backup and ``EXIT_PREEMPTED``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from facepars.core.internals import CALLBACK_STATE, inner_optimizer
from facepars.data.split_input import SplitInput

# What train exits with after a preemption has been saved: the code TensorFlow's
# own preemption handling uses on GCE (128 + SIGTERM). A supervisor restarts on it
# (and on 137, a kill -9: the run then resumes from its last periodic backup).
EXIT_PREEMPTED = 143
STOP_KEY = "stop_requested"  # the agreed stop flag in a train step's logs


class Preempted(Exception):
    """The run stopped at a step boundary on a signal, after saving its backup:
    nothing is left to write (see ``exit_now``)."""

    def __init__(self, step: int, path: str, why: str = "on a signal"):
        super().__init__(f"stopped {why} after step {step}; backup saved in {path}; "
                         "run the same command again to resume")
        self.step = step


class Preemption:
    """SIGTERM and a first Ctrl-C ask the run to stop at the next step boundary.

    The handler only sets a flag; the loop hands it to the next step, whose
    reduced logs carry it to every worker at the same step. After the
    first signal the default handlers are back: a second Ctrl-C stops at once
    (KeyboardInterrupt), a second SIGTERM kills.

    A signal ignored when the run starts stays ignored: a shell starts a script's
    background jobs (``train &``) with SIGINT ignored, so that a Ctrl-C meant for
    the terminal leaves them running; catching it would undo that.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        self.requested = True
        logging.warning("%s: finishing the step in flight, saving a backup at that step, then "
                        "exiting with %d (again to stop at once)", signal.Signals(signum).name,
                        EXIT_PREEMPTED)
        self._restore()

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    @contextlib.contextmanager
    def watching(self):
        """Handle the signals inside the block (only the main thread can)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.getsignal(s) for s in self.SIGNALS
                              if signal.getsignal(s) is not signal.SIG_IGN}
            for s in self._previous:
                signal.signal(s, self._handle)
        else:
            logging.warning("training outside the main thread: SIGTERM will not be caught")
        try:
            yield self
        finally:
            self._restore()


def exit_now(code: int = EXIT_PREEMPTED) -> None:
    """End the process at once, after a ``Preempted`` stop has saved everything.

    A normal exit tears down the input pipelines, and tf.data's autotuning thread
    makes that wait out its optimisation period (up to a minute) before the process
    is gone: longer than a spot VM's 30 s grace. Nothing needs the teardown: the
    backup is saved, TensorBoard's writers flush as each write ends (``as_default``'s
    exit), history.csv is closed.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.flush()
    os._exit(code)


class _JsonState(tf.train.experimental.PythonState):
    """The loop's and the callbacks' Python state, inside the checkpoint."""

    def __init__(self):
        self.value = {}

    def serialize(self):
        return json.dumps(self.value)

    def deserialize(self, string):
        self.value = json.loads(string)


class Backup:
    """What a killed or preempted run resumes from, in ``directory``.

    A ``tf.train.Checkpoint`` over explicit variable lists (the network's
    variables, random-seed states included; the optimizer's; the model's own;
    the metrics'), so nothing depends on which attributes Keras tracks; the
    CheckpointManager writes a new checkpoint before it names it latest, so a
    kill while saving leaves the previous one.
    """

    def __init__(self, directory: str, parser):
        if not inner_optimizer(parser.optimizer).built:
            raise ValueError("build the optimizer first: its slots belong in the backup")
        self.directory = directory
        self.state = _JsonState()
        self.checkpoint = tf.train.Checkpoint(
            network=list(parser.network.variables),
            optimizer=list(parser.optimizer.variables),
            model=[parser.learning_rate_scale],
            metrics=[v for m in parser.metrics for v in m.variables],
            loop=self.state)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=2)

    def save(self, step: int, state: dict) -> None:
        self.state.value = state
        self.manager.save(checkpoint_number=step)

    def restore(self) -> dict | None:
        """Put the last backup's values back; returns its loop state (None: no backup)."""
        path = self.manager.latest_checkpoint
        if path is None:
            return None
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return self.state.value

    def remove(self) -> None:
        if tf.io.gfile.exists(self.directory):
            tf.io.gfile.rmtree(self.directory)


def _callback_state(callbacks) -> list:
    out = []
    for cb in callbacks:
        keys = next((k for t, k in CALLBACK_STATE.items() if isinstance(cb, t)), None)
        if keys is not None:
            out.append({k: _plain(getattr(cb, k)) for k in keys})
        else:
            out.append(cb.get_state() if hasattr(cb, "get_state") else None)
    return out


def _set_callback_state(callbacks, states: list) -> None:
    for cb, state in zip(callbacks, states):
        if state is None:
            continue
        if any(isinstance(cb, t) for t in CALLBACK_STATE):
            for k, v in state.items():
                setattr(cb, k, v)
        else:
            cb.set_state(state)


def _plain(value):
    """A JSON-able copy of a callback attribute (numpy scalars, None, numbers)."""
    if value is None:
        return None
    return float(value) if isinstance(value, (float, np.floating)) else int(value)


def scalar(value) -> float:
    """A log value (a scalar, or a length-1 vector under MultiWorkerMirroredStrategy)."""
    return float(np.max(np.asarray(value)))


@dataclasses.dataclass(frozen=True)
class Plan:
    """How far a run goes: ``epochs`` of ``steps_per_epoch`` steps, a backup every
    ``backup_every_steps`` steps (0: at epoch ends only) besides each epoch's end,
    and, ``stop_after_steps`` > 0, a stop as on a signal once this process has run
    that many steps (a time-boxed slot; a test's stop at a step it chooses)."""

    epochs: int
    steps_per_epoch: int
    backup_every_steps: int = 0
    stop_after_steps: int = 0


def fit(parser, *, plan: Plan, train: SplitInput, val: SplitInput, callbacks: list,
        backup: Backup, preemption: Preemption, workers: int = 1, verbose: int = 2):
    """Train ``parser`` as ``plan`` says, from its backup if any.

    ``train`` and ``val`` give the inputs, and name the bad record behind an input
    error in either (``SplitInput.naming_bad_records``). One worker stops right after the step
    in flight when signalled (or, signalled during validation, after the epoch's
    backup); several stop after the next step, whose reduced logs tell them all.
    Returns the History.
    """
    per_call = parser.steps_per_execution
    epochs, steps_per_epoch = plan.epochs, plan.steps_per_epoch
    cbs = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                       verbose=verbose, epochs=epochs, steps=steps_per_epoch,
                                       model=parser)
    state = backup.restore()
    step = int(parser.optimizer.iterations.numpy())
    iterator = iter(train.dataset(step))
    val_data, val_steps = val.dataset(), val.steps_per_pass()
    parser.make_train_function()
    train_function = parser.train_function
    parser.stop_training = False
    cbs.on_train_begin()
    epoch, k = divmod(step, steps_per_epoch)
    if state is not None:
        _set_callback_state(callbacks, state["callbacks"])
        logging.info("resuming from the backup at epoch %d, step %d", epoch + 1, step)
    epoch_logs, first_step, saved_at = {}, True, None

    def save():
        nonlocal saved_at
        saved_at = epoch * steps_per_epoch + k
        backup.save(saved_at, {"step": saved_at, "callbacks": _callback_state(callbacks)})

    def stop_here(why: str = "on a signal"):
        if saved_at != epoch * steps_per_epoch + k:
            save()
        raise Preempted(epoch * steps_per_epoch + k, backup.directory, why)

    def budget_spent() -> bool:  # the same answer on every worker, at the same step
        return 0 < plan.stop_after_steps <= epoch * steps_per_epoch + k - step

    while epoch < epochs and not parser.stop_training:
        if k == 0:  # a resumed epoch keeps its metric sums (restored with the backup)
            parser.reset_metrics()
        cbs.on_epoch_begin(epoch)
        while k < steps_per_epoch:
            if workers == 1 and preemption.requested:
                stop_here()
            if budget_spent():
                stop_here(f"at --stop_after_steps={plan.stop_after_steps}")
            cbs.on_train_batch_begin(k)
            if preemption.requested:
                parser.stop_requested.assign(1.0)
            with train.naming_bad_records(lambda: epoch * steps_per_epoch + k):
                logs = train_function(iterator)
            agreed = scalar(logs.pop(STOP_KEY)) > 0
            if first_step:
                logging.info("first step of this process done (step %d)", step + per_call)
                first_step = False
            k += per_call
            cbs.on_train_batch_end(k - 1, logs)
            if agreed:
                stop_here()
            if parser.stop_training:
                break
            if plan.backup_every_steps and \
                    (epoch * steps_per_epoch + k) % plan.backup_every_steps == 0 \
                    and k < steps_per_epoch:
                save()
        epoch_logs = dict(parser.get_metrics_result())
        with val.naming_bad_records(lambda: _evaluated(callbacks)):
            val_logs = parser.evaluate(val_data, steps=val_steps, callbacks=cbs,
                                       return_dict=True)
        epoch_logs.update({f"val_{name}": value for name, value in val_logs.items()})
        cbs.on_epoch_end(epoch, epoch_logs)
        epoch, k = epoch + 1, 0
        # Last: a backup marks an epoch done only once every callback has recorded it.
        save()
    if epochs > 0:
        parser.optimizer.finalize_variable_values(parser.trainable_weights)
    cbs.on_train_end(epoch_logs)
    backup.remove()
    return parser.history


class EvalPosition(keras.callbacks.Callback):
    """The validation batch being read (to name a bad record there)."""

    batch = 0

    def on_test_batch_begin(self, batch, logs=None):
        self.batch = batch

    def on_test_begin(self, logs=None):
        self.batch = 0


def _evaluated(callbacks) -> int:
    return next((cb.batch for cb in callbacks if isinstance(cb, EvalPosition)), 0)

