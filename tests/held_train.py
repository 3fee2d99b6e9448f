"""``python tests/held_train.py STEP UNTIL [train flags]``: facepars.train, held at a step.

The real command line, with one test hook: once the run's backup at ``STEP``
is written, it logs "held after the backup at step STEP" and waits there, with
UNTIL ``signal``, until a first signal arrives (SIGTERM, Ctrl-C: the run then
stops as it would on it) or it is killed; with ``kill``, through a first signal
too, until the process ends (kill -9, or a second signal, which stops at once).
So a test signals or kills a run at the step it names, however fast or slow the
machine, instead of racing it.
"""

import runpy
import sys
import threading

from absl import logging

from facepars.training import loop

HOLD, UNTIL = int(sys.argv.pop(1)), sys.argv.pop(1)
assert UNTIL in ("signal", "kill"), UNTIL
_signalled = threading.Event()
_save, _handle = loop.Backup.save, loop.Preemption._handle


def _held_save(self, step: int, state: dict) -> None:
    _save(self, step, state)
    if step == HOLD:
        logging.info("held after the backup at step %d", step)
        while UNTIL == "kill" or not _signalled.is_set():
            _signalled.wait(0.05)  # short waits: Python runs signal handlers between them


def _noted_handle(self, signum, frame):
    _handle(self, signum, frame)
    _signalled.set()


loop.Backup.save, loop.Preemption._handle = _held_save, _noted_handle
runpy.run_module("facepars.train", run_name="__main__", alter_sys=True)
