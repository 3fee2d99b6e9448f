"""Stopping and resuming at any step: SIGTERM, kill -9, and two workers agreeing.

One uninterrupted reference run is shared by the single-device checks; the
interrupted runs must end on its weights to the bit (op determinism on).
"""

import csv
import json
import os
import re
import signal
import socket
import time

import pytest

from facepars.training import loop

import launcher
from conftest import REPO, TINY, run_launched

TIMEOUT = 900  # generous: every wait below ends on an event, this only bounds a hang
TIMING = ("images_per_second", "step_time")  # history columns that measure the machine


@pytest.fixture(scope="module")
def data(synthetic_data, tiny_run):
    """The shared synthetic set: 64 train records in 8 shards, so 20 steps of 8 cross
    two passes and a pass boundary falls inside an epoch. Every run is a fine-tune of
    the shared tiny run with the backbone frozen for 6 steps, so a stop before step 6
    must resume frozen, and a resumed run must ignore --init_from. The network is
    the tiny family: what is tested is the loop's, and 13 training processes of
    MobileNetV3 would spend most of their time tracing it."""
    return synthetic_data, tiny_run


def _args(data, model_dir, *extra, epochs=2):
    data, start = data
    return ["--config=smoke", f"--config.model={TINY}", f"--data_dir={data}",
            f"--model_dir={model_dir}", f"--init_from={start}", "--config.freeze_backbone_steps=6",
            "--config.overlay_images=0", "--config.batch_size=8", f"--config.epochs={epochs}",
            "--config.steps_per_epoch=10", "--config.backup_every_steps=2",
            "--config.op_determinism=True", "--config.schedule.name=plateau",
            "--config.schedule.plateau_patience=1", "--config.input.shuffle_buffer=24", *extra]


def _start(args, log, hold: int = 0, until: str = "signal", **env):
    """The train command; ``hold``: held after its backup at that step ``until`` a
    signal, or until killed (tests/held_train.py), so a test signals or kills it there."""
    command = ["tests/held_train.py", str(hold), until] if hold else ["-m", "facepars.train"]
    return launcher.launch([*command, *args],
                           dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO, **env),
                           open(str(log) + ".out", "w"), open(str(log) + ".err", "w"))


def _backup_step(directory) -> int:
    """The step of the backup a restart would resume from (0: none yet)."""
    state = os.path.join(directory, "checkpoint")
    found = os.path.exists(state) and re.search(r'^model_checkpoint_path: "ckpt-(\d+)"',
                                                open(state).read(), re.M)
    return int(found.group(1)) if found else 0


def _wait_for_line(log, text, proc) -> float:
    """Until ``text`` is in the run's stderr; returns when it was seen."""
    deadline = time.monotonic() + TIMEOUT
    while text not in open(str(log) + ".err").read():
        assert proc.poll() is None or text in open(str(log) + ".err").read(), \
            f"exited {proc.returncode} without {text!r}"
        assert time.monotonic() < deadline, f"no {text!r} after {TIMEOUT} s"
        time.sleep(0.02)
    return time.monotonic()


def _finish(proc, log):
    proc.wait(timeout=TIMEOUT)
    return proc.returncode, open(str(log) + ".out").read(), open(str(log) + ".err").read()


def _checksum(out):
    found = re.search(r"final weights checksum: (\w+) after (\d+) steps", out)
    assert found, out[-2000:]
    return found.group(1), int(found.group(2))


def _history(model_dir):
    rows = list(csv.DictReader(open(os.path.join(model_dir, "history.csv"))))
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _epoch_scalars(model_dir, tag="epoch_loss"):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(os.path.join(model_dir, "tensorboard", "train"),
                           size_guidance={"tensors": 0})
    acc.Reload()
    import tensorflow as tf
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]


@pytest.mark.slow
def test_kill9_and_stops_on_odd_and_even_steps_resume_to_the_same_weights(data, tmp_path):
    """The reference runs 20 steps. The other run is killed with -9 right after its
    mid-epoch backup at step 4 (held there until the kill); resumed, sent Ctrl-C
    while held after its backup at step 12, between steps, so it stops there (the
    periodic backup is the stop's); resumed and stopped after step 13 by
    --stop_after_steps (odd: no periodic backup there, the stop saves its own);
    resumed again: same weights to the bit, same step count, same history rows
    and TensorBoard points."""
    ref_dir, dir_ = tmp_path / "reference", tmp_path / "run"
    reference = _start(_args(data, ref_dir), tmp_path / "ref")
    code, ref_out, err = _finish(reference, tmp_path / "ref")
    assert code == 0, err[-3000:]
    ref_sum, ref_steps = _checksum(ref_out)
    assert ref_steps == 20

    first = _start(_args(data, dir_), tmp_path / "a", hold=4, until="kill")
    _wait_for_line(tmp_path / "a", "held after the backup at step 4", first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = _backup_step(dir_ / "backup")
    assert first.returncode == -signal.SIGKILL and killed_at == 4, (first.returncode, killed_at)

    for log, stop, resumed_from in (("b", 12, killed_at), ("c", 13, 12)):
        if log == "b":
            proc = _start(_args(data, dir_), tmp_path / log, hold=12)
            _wait_for_line(tmp_path / log, "held after the backup at step 12", proc)
            proc.send_signal(signal.SIGINT)
        else:
            proc = _start(_args(data, dir_, f"--stop_after_steps={stop - resumed_from}"),
                          tmp_path / log)
        stopped = _wait_for_line(tmp_path / log, f"after step {stop}; backup saved", proc)
        code, _, err = _finish(proc, tmp_path / log)
        # Gone once saved (a spot VM gives 30 s from SIGTERM to power-off); a normal
        # interpreter exit waited out tf.data's autotune period, 20-60 s.
        assert time.monotonic() - stopped < 10, "the process lingered after its backup"
        assert code == loop.EXIT_PREEMPTED, err[-3000:]
        epoch = resumed_from // 10 + 1
        assert f"resuming from the backup at epoch {epoch}, step {resumed_from}" in err, \
            err[-3000:]
        assert "--init_from" in err and "is ignored" in err, err[-3000:]
        assert os.path.exists(dir_ / "backup" / f"ckpt-{stop}.index")

    last = _start(_args(data, dir_), tmp_path / "d")
    code, out, err = _finish(last, tmp_path / "d")
    assert code == 0, err[-3000:]
    assert "resuming from the backup at epoch 2, step 13" in err
    assert _checksum(out) == (ref_sum, 20)
    assert _history(dir_) == _history(ref_dir)
    assert _epoch_scalars(dir_) == _epoch_scalars(ref_dir)
    assert not os.path.exists(dir_ / "backup")  # a finished run leaves no backup


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_to_the_command_stops_it_at_once_keeping_its_backup(
        data, tmp_path, signum):
    """The first signal asks for a stop after the step in flight; the run is held
    after its backup at step 2 through it, so the second lands before that stop:
    the process ends at once (SIGTERM's default: killed; Ctrl-C: KeyboardInterrupt),
    and the backup at step 2 is the one a restart takes."""
    run = tmp_path / "run"
    proc = _start(_args(data, run), tmp_path / "a", hold=2, until="kill")
    _wait_for_line(tmp_path / "a", "held after the backup at step 2", proc)
    proc.send_signal(signum)
    _wait_for_line(tmp_path / "a", "finishing the step in flight", proc)
    proc.send_signal(signum)
    code, _, err = _finish(proc, tmp_path / "a")
    assert code == -signum if signum == signal.SIGTERM else "KeyboardInterrupt" in err, \
        (code, err[-2000:])
    assert err.count("finishing the step in flight") == 1
    assert _backup_step(run / "backup") == 2


# In a fresh interpreter with SIGINT at Python's own handler, as a terminal starts it:
# a process started in the background by a script (CI's, for one) inherits SIGINT
# ignored, and an ignored signal stays ignored (checked at the end).
_SIGNALS_CODE = """
import signal, sys, threading, time
from facepars.training import loop

def send(signum):  # to the main thread, where Python runs its handlers
    signal.pthread_kill(threading.main_thread().ident, signum)
    time.sleep(0)

signal.signal(signal.SIGINT, signal.default_int_handler)
before = signal.getsignal(signal.SIGTERM)
first = loop.Preemption()
with first.watching():
    send(signal.SIGTERM)
    assert first.requested, "SIGTERM did not ask"
    try:
        send(signal.SIGINT)
        for _ in range(500):  # bytecodes for the handler to run in
            time.sleep(0.01)
        sys.exit("a second signal (Ctrl-C) did not stop at once")
    except KeyboardInterrupt:
        pass
assert signal.getsignal(signal.SIGTERM) is before, "handlers not restored"
again = loop.Preemption()
with again.watching():
    send(signal.SIGINT)
    assert again.requested, "a first Ctrl-C did not ask"

signal.signal(signal.SIGINT, signal.SIG_IGN)
background = loop.Preemption()
with background.watching():
    send(signal.SIGINT)
    for _ in range(50):
        time.sleep(0.01)
    assert not background.requested, "an ignored Ctrl-C was caught"
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
print("ok")
"""


def test_a_first_signal_asks_a_second_ctrl_c_stops_at_once():
    proc = run_launched(["-c", _SIGNALS_CODE], TIMEOUT)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _workers(data, model_dir, tmp_path, tag, hold_second: int = 0):
    """Two workers on free ports, started again on others when one was taken between
    ``_free_port`` and the worker's bind (TF's server cannot share a port held open
    for it). A worker's server is up once it names its input pipeline, which both do
    only when both are up."""
    for _ in range(3):
        cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
        procs, logs = [], [tmp_path / f"{tag}{index}" for index in range(2)]
        for index in range(2):
            config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            procs.append(_start(_args(data, model_dir, "--strategy=multi_worker",
                                      "--config.op_determinism=False", epochs=1),
                                logs[index], hold_second if index else 0, TF_CONFIG=config))
        if _all_up(procs, logs):
            return procs
        for proc in procs:
            proc.kill()
            proc.wait()
    raise AssertionError("no two free ports in three tries")


def _all_up(procs, logs) -> bool:
    """Until every worker has named its input pipeline (True), or one could not bind
    its port (False); any other exit fails the test."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        errs = [open(str(log) + ".err").read() for log in logs]
        if all("input pipeline" in err for err in errs):
            return True
        for proc, err in zip(procs, errs):
            if proc.poll() is not None:
                assert "Could not start gRPC server" in err, err[-3000:]
                return False
        assert time.monotonic() < deadline, f"workers not up after {TIMEOUT} s"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_one_step_and_they_resume(data, tmp_path):
    """Two MultiWorkerMirroredStrategy workers; SIGTERM to worker 1 only, held after
    its backup at step 2 until then (worker 0 waits in the next step's all-reduce).
    Both save at the same step and exit with EXIT_PREEMPTED; restarted, both finish
    on the weights of an uninterrupted two-worker run, having read disjoint records."""
    reference = _workers(data, tmp_path / "reference", tmp_path, "ref")
    results = [_finish(p, tmp_path / f"ref{i}") for i, p in enumerate(reference)]
    assert all(code == 0 for code, _, _ in results), results[0][2][-3000:]
    ref_sums = {_checksum(out) for _, out, _ in results}
    assert len(ref_sums) == 1 and next(iter(ref_sums))[1] == 10
    shares = [re.search(r"train: input pipeline (\d) of 2 reads (\d+) records", err)
              for _, _, err in results]
    assert sorted(m.group(1) for m in shares) == ["0", "1"], results[0][2][-2000:]

    model_dir = tmp_path / "run"
    procs = _workers(data, model_dir, tmp_path, "a", hold_second=2)
    _wait_for_line(tmp_path / "a1", "held after the backup at step 2", procs[1])
    procs[1].send_signal(signal.SIGTERM)
    stops = []
    for i, p in enumerate(procs):
        code, _, err = _finish(p, tmp_path / f"a{i}")
        assert code == loop.EXIT_PREEMPTED, err[-3000:]
        stops.append(int(re.search(r"stopped on a signal after step (\d+)", err).group(1)))
    assert stops[0] == stops[1] == 3, stops  # the step in flight when the signal came
    for i in range(2):
        assert os.path.exists(model_dir / "backup" / f"worker-{i}" / f"ckpt-{stops[0]}.index")

    procs = _workers(data, model_dir, tmp_path, "b")
    results = [_finish(p, tmp_path / f"b{i}") for i, p in enumerate(procs)]
    for code, _, err in results:
        assert code == 0, err[-3000:]
        assert f"step {stops[0]}" in err and "resuming from the backup" in err
    assert {_checksum(out) for _, out, _ in results} == ref_sums
