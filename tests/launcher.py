"""Command lines in child processes of a launcher that has imported TensorFlow once.

A TensorFlow command spends about 4 CPU-seconds importing TensorFlow, Keras and
facepars before it reads a flag, and the suite runs dozens of them. So the test
session starts one launcher (``python tests/launcher.py DIRECTORY OWNER``), shared
by its pytest-xdist workers, that imports them, and then forks a child for each
command line a test asks for. It serves two kinds of command line, each on a
socket of its own: "facepars" (every command) and "tensorflow", for what must run
without facepars (a SavedModel loaded as TF Serving loads it, TensorFlow's own
tools). The second is served by a process forked once TensorFlow is imported and
before facepars is.

The child is the command as a user runs it, in a process of its own: the module
run as ``python -m`` runs it (runpy, as ``__main__``, ``sys.argv`` and
``sys.path[0]`` as python sets them) or a script as ``python script`` runs it,
with the test's arguments, environment, working directory and output files; its
own pid, for the signals a test sends; its exit status as ``subprocess`` gives
it (negative: killed by that signal). ``python -c CODE`` too. Only the imports
are not repeated.

Forking is safe because the launcher only imports: TensorFlow starts its runtime
(the eager context, the devices, the thread pools) in the child, on first use.
The launcher's other threads are OpenBLAS's (numpy's, OpenCV's, SciPy's), which
handles a fork itself.

A command whose test is about how its process starts is run afresh with
``subprocess``: the flag checks before TensorFlow loads (tests/core/test_cli.py)
and anything that needs its own PYTHONPATH (the test hooks of tests/hold).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import runpy
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What each kind of command line finds imported. "facepars": the work of every
# command, all of which load TensorFlow (prepare's in facepars.data; its conversion
# workers start afresh, from a forkserver). "tensorflow": TensorFlow alone.
PRELOADED = {"facepars": ("facepars.train_lib", "facepars.evaluate_lib", "facepars.predict_lib",
                          "facepars.export_lib", "facepars.verify_lib", "facepars.data.shards",
                          "facepars.data.pool", "facepars.data.contents"),
             "tensorflow": ("tensorflow",)}
_PACKET = 1 << 16  # a request or a reply is one packet (SOCK_SEQPACKET) of at most this
# The environment variable naming the session's launcher: {"directory", "owner"}.
_SESSION = "FACEPARS_TEST_LAUNCHER"


# --- the launcher process ---------------------------------------------------------------

def main(directory: str, owner: int) -> None:
    """Serve both kinds of command line from sockets in ``directory`` until the
    process ``owner`` (the test session's) is gone: import TensorFlow, fork the
    server of "tensorflow", then import the rest and serve "facepars"."""
    importlib.import_module("tensorflow")
    listeners = {kind: _listen(directory, kind) for kind in PRELOADED}
    if os.fork() == 0:
        listeners["facepars"].close()
        _leave_stdout()  # the pipe's EOF must say the launcher ended, should it fail below
        serve(listeners["tensorflow"], owner)
        os._exit(0)
    listeners["tensorflow"].close()
    for module in PRELOADED["facepars"]:
        importlib.import_module(module)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"ready {usage.ru_utime + usage.ru_stime}", flush=True)
    _leave_stdout()  # its reader may end first
    serve(listeners["facepars"], owner)


def _leave_stdout() -> None:
    """Let go of the pipe the test process reads "ready" from."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _listen(directory: str, kind: str) -> socket.socket:
    """A listening socket at ``directory/kind``, put there once it accepts: a test
    process that finds the path can connect (and waits in its backlog until served)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    path = os.path.join(directory, kind)
    listener.bind(path + ".binding")
    listener.listen(64)
    os.rename(path + ".binding", path)
    return listener


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def serve(listener: socket.socket, owner: int) -> None:
    """Fork a child for each request on ``listener``, and answer each with the child's
    pid, then its exit status and CPU seconds, while ``owner`` lives."""
    wakeup, wakeup_write = os.pipe()  # SIGCHLD wakes the select below
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    waiting = {}
    while _alive(owner):
        ready = select.select([listener, wakeup], [], [], 1.0)[0]
        if wakeup in ready:
            os.read(wakeup, 4096)
        if listener in ready:
            connection = listener.accept()[0]
            request, fds, _, _ = socket.recv_fds(connection, _PACKET, 3)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                for sock in (listener, connection, *waiting.values()):
                    sock.close()
                for fd in (wakeup, wakeup_write):
                    os.close(fd)
                _become(json.loads(request), fds)  # does not return
            for fd in fds:
                os.close(fd)
            _reply(connection, str(pid))
            waiting[pid] = connection
        while waiting:
            pid, status, child = os.wait4(-1, os.WNOHANG)
            if not pid:
                break
            connection = waiting.pop(pid)
            _reply(connection, f"{os.waitstatus_to_exitcode(status)} "
                               f"{child.ru_utime + child.ru_stime}")
            connection.close()


def _reply(connection: socket.socket, message: str) -> None:
    """Send, unless the test has stopped listening (it gave up on the child)."""
    with contextlib.suppress(OSError):
        connection.send(message.encode())


def _become(request: dict, fds: list[int]) -> None:
    """In the child: the command line of ``request``, as python would start it."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in enumerate(fds):  # stdin, stdout, stderr
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv = request["argv"]
    if argv[0] == "-m":
        sys.argv, sys.path[0] = argv[1:], os.getcwd()  # runpy sets argv[0] to the module's file
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    elif argv[0] == "-c":
        sys.argv, sys.path[0] = ["-c", *argv[2:]], ""
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv, sys.path[0] = list(argv), os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")
    sys.exit(0)  # as the interpreter ends a script that returns


# --- the test's side ----------------------------------------------------------------------

# CPU seconds of the launcher's imports and of every child that has ended: the
# launcher's children are not this process's, so getrusage(RUSAGE_CHILDREN) misses
# them (tests/conftest.py adds this).
cpu_seconds = 0.0


def share_from_here() -> None:
    """Make this process the owner of the launcher its test processes share: the
    test session's (pytest's controller, whose xdist workers inherit the variable;
    in a worker it is already set). The launcher starts on first use."""
    if _SESSION not in os.environ:
        os.environ[_SESSION] = json.dumps({"directory": tempfile.mkdtemp(
            prefix="facepars-launcher-"), "owner": os.getpid()})


def _session() -> dict:
    """The session's launcher: {"directory": its sockets, pid and log, "owner": pid}."""
    return json.loads(os.environ[_SESSION])


def stop() -> None:
    """At the session's end, in its owner: the launcher, its server of the other kind
    and any child still running (one process group), then its directory."""
    session = _session()
    if session["owner"] != os.getpid():
        return
    pid_file = os.path.join(session["directory"], "pid")
    if os.path.exists(pid_file):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(open(pid_file).read()), signal.SIGKILL)
    shutil.rmtree(session["directory"], ignore_errors=True)


def _socket_path(kind: str) -> str:
    """The socket of ``kind`` of the session's launcher, which the first test process
    to need one starts; the others wait for the socket (an event; the deadline only
    bounds a hang)."""
    session = _session()
    directory = session["directory"]
    path, pid_file, log, failed = (os.path.join(directory, name)
                                   for name in (kind, "pid", "log", "failed"))
    try:
        os.mkdir(os.path.join(directory, "started"))
    except FileExistsError:
        deadline = time.monotonic() + 900
        while not os.path.exists(path):
            if os.path.exists(failed) or (os.path.exists(pid_file)
                                          and not _alive(int(open(pid_file).read()))):
                raise _did_not_start(log)
            assert time.monotonic() < deadline, f"no launcher socket {path} after 900 s"
            time.sleep(0.05)
        return path
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), directory, str(session["owner"])],
        cwd=REPO, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(log, "w"),
        preexec_fn=_as_from_a_terminal, start_new_session=True)
    with open(pid_file + ".writing", "w") as f:
        f.write(str(proc.pid))
    os.rename(pid_file + ".writing", pid_file)
    ready = proc.stdout.readline()  # an event: the line, or EOF if it failed
    if not ready.startswith("ready"):
        open(failed, "w").close()
        raise _did_not_start(log)
    global cpu_seconds
    cpu_seconds += float(ready.split()[1])
    return path


def _did_not_start(log: str) -> RuntimeError:
    return RuntimeError(f"the launcher did not start:\n{open(log).read()[-3000:]}")


def _as_from_a_terminal() -> None:
    """Ctrl-C reaches a command as it does from a terminal: a test runner started in the
    background (CI's) passes SIGINT on ignored, and an ignored signal stays ignored
    in every process started from it. With SIGINT at its default, python installs
    its own handler (KeyboardInterrupt), which the launcher's children inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Launched:
    """A command line running in a child of the launcher: what the tests use of
    subprocess.Popen (pid, poll, wait, returncode, send_signal, kill)."""

    def __init__(self, argv: list[str], connection: socket.socket, log: str):
        self.args, self._connection, self._log, self.returncode = argv, connection, log, None
        self.pid = int(self._receive())

    def _receive(self) -> str:
        reply = self._connection.recv(_PACKET).decode()
        if not reply:
            raise RuntimeError(f"the launcher ended (its log: {self._log}):\n"
                               f"{open(self._log).read()[-3000:]}")
        return reply

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._connection], [], [], 0)[0]:
            self._ended()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._connection], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self._ended()
        return self.returncode

    def _ended(self) -> None:
        global cpu_seconds
        code, cpu = self._receive().split()
        self.returncode, cpu_seconds = int(code), cpu_seconds + float(cpu)
        self._connection.close()

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def launch(argv: list[str], env: dict, stdout, stderr, cwd: str = REPO,
           kind: str = "facepars") -> Launched:
    """``python *argv`` (``["-m", module, ...]``, ``["-c", code, ...]`` or ``[script,
    ...]``) in a child of the launcher of ``kind`` (``PRELOADED``), writing to the
    open files ``stdout`` and ``stderr``; stdin is empty. ``env`` must keep the
    launcher's PYTHONPATH: its imports are already done."""
    assert env.get("PYTHONPATH") == REPO, "a command with its own PYTHONPATH runs afresh"
    log = os.path.join(_session()["directory"], "log")
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.connect(_socket_path(kind))
    except ConnectionRefusedError:  # its socket was there, its server ended
        raise _did_not_start(log) from None
    request = json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode()
    assert len(request) < _PACKET, "the request is longer than a packet"
    with open(os.devnull) as stdin:
        socket.send_fds(connection, [request], [stdin.fileno(), stdout.fileno(), stderr.fileno()])
    return Launched(argv, connection, log)


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # as under ``python -m``: the repository, not tests/
    main(sys.argv[1], int(sys.argv[2]))
