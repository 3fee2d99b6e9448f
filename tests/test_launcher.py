"""The launcher's child is the process python would start (tests/launcher.py).

Every command line of the suite that loads TensorFlow runs as a child of the
launcher, so what a test sees of a child (its argv, search path, working directory,
environment, signal handlers, exit status) must be what it would see of
``python ...`` started afresh: each case runs both ways and compares.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import launcher
from conftest import REPO

_PROBE = """
import json, os, signal, sys
print(json.dumps({"argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(),
                  "name": __name__, "probe": os.environ.get("FACEPARS_PROBE"),
                  "stdin": sys.stdin.read(),
                  "handlers": [str(signal.getsignal(s)) for s in
                               (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)]}), flush=True)
ending = sys.argv[-1]
if ending == "message":
    sys.exit("probe: a message")
if ending == "code":
    sys.exit(3)
if ending == "error":
    raise ValueError("probe: an error")
if ending == "ctrl-c":
    os.kill(os.getpid(), signal.SIGINT)
if ending == "term":
    os.kill(os.getpid(), signal.SIGTERM)
"""


def _both(argv, cwd, tmp_path, kind="facepars"):
    """(exit status, stdout, last line of stderr) of ``python *argv`` afresh, then
    launched by the launcher of ``kind``."""
    env = dict(os.environ, PYTHONPATH=REPO, FACEPARS_PROBE="set")
    fresh = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=300,
                           preexec_fn=launcher._as_from_a_terminal)
    with open(tmp_path / "out", "w+") as out, open(tmp_path / "err", "w+") as err:
        child = launcher.launch(argv, env, out, err, cwd=str(cwd), kind=kind)
        child.wait(300)
        out.seek(0)
        err.seek(0)
        launched = child.returncode, out.read(), err.read()
    return [(code, json.loads(stdout), (stderr.strip().splitlines() or [""])[-1])
            for code, stdout, stderr in ((fresh.returncode, fresh.stdout, fresh.stderr),
                                         launched)]


@pytest.mark.parametrize("how,ending", [("script", "return")] + [
    ("module", ending) for ending in ("return", "message", "code", "error", "ctrl-c", "term")] + [
    ("-c", ending) for ending in ("return", "error", "term")])
def test_a_launched_child_is_what_python_starts(tmp_path, how, ending):
    """A module, a script, or code given with -c (that one to the launcher of
    TensorFlow alone, as tests/test_export.py runs its SavedModel there)."""
    (tmp_path / "probe.py").write_text(_PROBE)
    argv = {"module": ["-m", "probe", ending], "script": [str(tmp_path / "probe.py"), ending],
            "-c": ["-c", _PROBE, ending]}[how]
    fresh, launched = _both(argv, tmp_path, tmp_path,
                            kind="tensorflow" if how == "-c" else "facepars")
    assert launched == fresh
    expected = {"return": 0, "message": 1, "code": 3, "error": 1, "ctrl-c": -signal.SIGINT,
                "term": -signal.SIGTERM}[ending]
    assert fresh[0] == expected  # the probe did what it was asked


def test_a_child_the_test_gave_up_on_does_not_end_the_launcher(tmp_path):
    """A test that stops waiting (a timeout) closes its side; when that child ends,
    the launcher's reply finds no one, and the next command line still starts."""
    release = tmp_path / "release"
    (tmp_path / "wait.py").write_text(
        f"import os, time\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.05)\n")
    env = dict(os.environ, PYTHONPATH=REPO)
    with open(tmp_path / "out", "w") as out:
        abandoned = launcher.launch([str(tmp_path / "wait.py")], env, out, out)
        with pytest.raises(subprocess.TimeoutExpired):
            abandoned.wait(0.1)
        abandoned._connection.close()  # as when a failing test drops its Launched
        release.touch()
        while _exists(abandoned.pid):  # until reaped: the launcher's reply comes next
            time.sleep(0.05)
        (tmp_path / "probe.py").write_text(_PROBE)
        assert launcher.launch([str(tmp_path / "probe.py"), "code"], env, out, out).wait(300) == 3


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # a child not yet reaped (a zombie) still exists
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("kind", ["tensorflow", "facepars"])
def test_each_kind_of_child_finds_its_own_imports_done(tmp_path, kind):
    """The "tensorflow" kind is forked from the launcher before facepars is imported:
    its children find TensorFlow loaded and no facepars module, as a process that
    imports TensorFlow alone would; the "facepars" kind's find every command's work."""
    code = ("import json, sys; print(json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('tensorflow', 'facepars'))))")
    with open(tmp_path / "out", "w+") as out:
        child = launcher.launch(["-c", code], dict(os.environ, PYTHONPATH=REPO), out, out,
                                kind=kind)
        assert child.wait(300) == 0
        out.seek(0)
        loaded = set(json.loads(out.read().strip().splitlines()[-1]))
    assert "tensorflow" in loaded
    facepars = {m for m in loaded if m.split(".")[0] == "facepars"}
    if kind == "tensorflow":
        assert not facepars, sorted(facepars)
    else:
        assert set(launcher.PRELOADED["facepars"]) <= facepars
