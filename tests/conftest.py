"""Shared test set-up: two logical CPU devices, a CLI runner, record readers."""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A pytest worker runs Beam pipelines in-process (gRPC servers and their threads),
# then starts ffmpeg and other programs from that same process. gRPC's fork support
# (compiled into grpcio's core) runs its handlers in each child between fork and
# exec: once such a child printed "Epoll1Poller ... epoll_wait error: Bad file
# descriptor" and never reached ffmpeg. Beam's own tests turn it off the same way.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist every core already has a worker (`make test` starts one per
    # core and one more), so each TensorFlow process of a worker (itself, the
    # launcher's children, the commands they start) runs each op on one thread: the
    # suite is bound by CPU, and an op split across threads costs more of it (the
    # learning run: BUILD_NOTES.md, "The test suite's time"). Without xdist (and in
    # xdist's controller, which times the reference workload), TensorFlow's default.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Split the CPU in two before anything initialises TensorFlow's devices, so
# MirroredStrategy tests run real replicas.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, REPO)  # tests.tiny_family, whatever directory a test runs in
# A model family of a dozen layers for tests whose property does not depend on the
# network (tests/tiny_family.py): loaded by its import path, as a user's own family.
TINY = "tests.tiny_family"

import launcher  # noqa: E402

launcher.share_from_here()  # one launcher for the session, whichever process starts it


def pytest_unconfigure(config):
    launcher.stop()


def pytest_collection_modifyitems(items):
    """Slow tests first, one from each file in turn. make test runs a worker per core
    and one more, each taking one test at a time (pytest-xdist, --maxschedchunk=1):
    the long tests then run beside each other and the short ones fill the gaps,
    instead of one worker ending the run alone on them.

    The longest chain of shared fixtures (the faces set, the learning run, the
    export: ``trained_run``) starts first, and the other slow tests that need it
    go after the rest of the slow ones: taken in turn, they waited for it, their
    worker idle (68 s of one, measured, before)."""
    by_file: dict = {}
    for item in items:
        if item.get_closest_marker("slow"):
            by_file.setdefault(item.path, []).append(item)
    slow = [item for turn in itertools.zip_longest(*by_file.values()) for item in turn if item]
    chain = [item for item in slow if "trained_run" in item.fixturenames]
    slow = chain[:1] + [item for item in slow if item not in chain] + chain[1:]
    items[:] = slow + [item for item in items if not item.get_closest_marker("slow")]


_SESSION_START = time.monotonic()


def reference_workload() -> float:
    """Seconds this machine takes for a fixed piece of TensorFlow work (convolutions
    and matrix products on two threads' worth of data, about 3 s on the developers'
    machine): the unit BUILD_NOTES gives the suite's time in, so that times measured
    on different machines compare."""
    x = tf.random.stateless_normal([16, 128, 128, 32], seed=[1, 2])
    kernel = tf.random.stateless_normal([3, 3, 32, 32], seed=[3, 4])
    matrix = tf.random.stateless_normal([768, 768], seed=[5, 6])
    start, total = time.perf_counter(), 0.0
    for _ in range(12):
        y = tf.nn.conv2d(x, kernel, 1, "SAME")
        for _ in range(8):
            matrix = tf.linalg.matmul(matrix, matrix) / 768.0
        total += float(tf.reduce_sum(y)) + float(tf.reduce_sum(matrix))  # waits for the ops
    assert np.isfinite(total)
    return time.perf_counter() - start


def _cpu_seconds() -> float:
    """CPU time of this process, of every subprocess it has waited for, and of the
    launcher's imports and ended children (tests/launcher.py)."""
    return launcher.cpu_seconds + sum(usage.ru_utime + usage.ru_stime for usage in
                                      (resource.getrusage(resource.RUSAGE_SELF),
                                       resource.getrusage(resource.RUSAGE_CHILDREN)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Each test's CPU seconds (set-up, call, teardown and the subprocesses it ran), on
    its teardown report: under two busy workers a test's wall time says more about
    its neighbour than about itself; its CPU time does not."""
    item.cpu_start = _cpu_seconds()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when == "teardown":
        outcome.get_result().user_properties.append(
            ("cpu_seconds", _cpu_seconds() - item.cpu_start))


def pytest_terminal_summary(terminalreporter):
    """The suite's time beside this machine's speed (``reference_workload``, the median
    of three timed now, after the tests, on the controller), and where the CPU went."""
    if os.environ.get("PYTEST_XDIST_WORKER") or terminalreporter.config.option.collectonly:
        return
    suite = time.monotonic() - _SESSION_START
    cpu = {report.nodeid: dict(report.user_properties)["cpu_seconds"]
           for reports in terminalreporter.stats.values() for report in reports
           if getattr(report, "when", None) == "teardown"
           and "cpu_seconds" in dict(getattr(report, "user_properties", []))}
    unit = float(np.median([reference_workload() for _ in range(3)]))
    terminalreporter.write_sep("=", "most CPU: the test and its subprocesses")
    for nodeid, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])[:8]:
        terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")
    terminalreporter.write_line(f"suite {suite:.1f} s, tests {sum(cpu.values()):.0f} CPU-s; "
                                f"reference workload {unit:.2f} s on this machine; suite = "
                                f"{suite / unit:.0f} workloads")


def run_cli(module: str, *args: str, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m module args`` as a user would run it, from the repository root, in a
    child of the launcher (tests/launcher.py)."""
    proc = run_launched(["-m", module, *args], timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}")
    return proc


def run_launched(argv: list[str], timeout: float = 600,
                 kind: str = "facepars") -> subprocess.CompletedProcess:
    """``python *argv`` from the repository root in a child of the launcher of ``kind``
    (tests/launcher.py: "tensorflow" for what runs without facepars), its output
    captured as ``subprocess.run`` captures it."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = launcher.launch(argv, env, out, err, kind=kind)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())


def held_prepare(marker, shards: int) -> dict:
    """The environment of a prepare job that stops writing once ``shards`` shards are
    in place and touches ``marker`` (tests/hold/sitecustomize.py), to be killed there."""
    hooks = os.path.join(REPO, "tests", "hold")
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=os.pathsep.join([hooks, REPO]),
                FACEPARS_TEST_HOLD_SHARDS=str(shards), FACEPARS_TEST_HOLD_MARKER=str(marker))


def wait_for_file(path, proc: subprocess.Popen, hang: float = 900) -> None:
    """Until ``path`` exists (an event; ``hang`` only bounds a run that never gets there)."""
    deadline = time.monotonic() + hang
    while not os.path.exists(path):
        assert proc.poll() is None, f"exited {proc.returncode} before {path} appeared"
        assert time.monotonic() < deadline, f"no {path} after {hang} s"
        time.sleep(0.05)


def read_split(data_dir: str, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """source_id -> (image, mask) of every record of a split, in the manifest's order."""
    from facepars.data import schema
    manifest = schema.Manifest.load(data_dir)
    out = {}
    for shard in manifest.shards(split):
        for serialized in tf.data.TFRecordDataset(shard.path):
            r = schema.parse_example(serialized, manifest.image_size)
            out[r["source_id"].numpy().decode()] = (r["image"].numpy(), r["mask"].numpy())
    return out


def shared(tmp_path_factory, name: str, make) -> str:
    """``make(path)`` once per test run, its output shared by every pytest-xdist worker.

    The first worker to create the directory makes it; the others wait for its done
    file (an event: a slow machine only waits longer; the deadline bounds a hang).
    Without xdist it is an ordinary session fixture."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, above each worker's own
    path, done, failed = (root / f"shared-{name}{suffix}" for suffix in ("", ".done", ".failed"))
    try:
        path.mkdir()
    except FileExistsError:
        deadline = time.monotonic() + 3600
        while not done.exists():
            if failed.exists():
                pytest.fail(f"the shared {name!r} failed in another worker:\n"
                            + failed.read_text())
            assert time.monotonic() < deadline, f"the shared {name!r} never finished"
            time.sleep(0.1)
        return str(path / name)
    try:
        make(str(path / name))
    except BaseException:
        failed.write_text(traceback.format_exc())
        raise
    done.touch()
    return str(path / name)


def _prepare(**config):
    from facepars import prepare
    return lambda out: prepare.run(prepare.PrepareConfig(output_dir=out, **config))


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """A small prepared synthetic set shared by the pipeline, model and training tests."""
    return shared(tmp_path_factory, "synthetic", _prepare(
        num_examples=80, image_size=64, shard_size=8, synthetic_size=96, workers=1))


@pytest.fixture(scope="session")
def face_data(tmp_path_factory):
    """A larger synthetic set at 96 px, enough for the smoke config to learn faces."""
    return shared(tmp_path_factory, "faces", _prepare(
        num_examples=160, image_size=96, shard_size=16, synthetic_size=128, workers=2))


def _train(data_dir: str, **config):
    """``make`` for ``shared``: the smoke config, these fields of it set, trained on
    ``data_dir``; the run's summary beside it (``<run>.summary.json``)."""
    import keras

    from facepars import train_lib
    from facepars.configs import smoke
    cfg = smoke.get_config()
    for field, value in config.items():
        assert hasattr(cfg, field), field  # a misspelt field fails, as on the command line
        setattr(cfg, field, value)

    def make(model_dir):
        try:
            summary = train_lib.run(cfg, data_dir, model_dir, "one_device")
        finally:
            keras.mixed_precision.set_global_policy("float32")
        with open(model_dir + ".summary.json", "w") as f:
            json.dump(summary, f, default=float)
    return make


@pytest.fixture(scope="session")
def trained_run(face_data, tmp_path_factory):
    """The smoke config (LR-ASPP on MobileNetV3, batch 16) trained 6 epochs of 25 steps
    on the faces set: the run whose learning tests/test_train.py checks, and the one
    every export is made of."""
    return shared(tmp_path_factory, "trained",
                  _train(face_data, epochs=6, steps_per_epoch=25, overlay_images=3))


@pytest.fixture(scope="session")
def tiny_run(synthetic_data, tmp_path_factory):
    """``TINY`` trained 2 epochs of 10 steps on the synthetic set: the start of the
    runs that fine-tune it, and the model the evaluate, predict and Beam-inference
    tests load."""
    return shared(tmp_path_factory, "tiny", _train(
        synthetic_data, model=TINY, epochs=2, steps_per_epoch=10, overlay_images=0,
        batch_size=8))
