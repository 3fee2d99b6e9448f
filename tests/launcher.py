"""Command lines in child processes of a launcher that has imported TensorFlow once.

A TensorFlow command spends about 4 CPU-seconds importing TensorFlow, Keras and
facepars before it reads a flag, and the suite runs dozens of them. So each
pytest worker starts one launcher (``python tests/launcher.py SOCKET``) that
imports them, and then forks a child for each command line a test asks for.
A second kind of launcher imports TensorFlow alone, for what must run without
facepars (a SavedModel loaded as TF Serving loads it, TensorFlow's own tools).

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

import atexit
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What each kind of launcher imports. "facepars": the work of every command, all of
# which load TensorFlow (prepare's in facepars.data; its conversion workers start
# afresh, from a forkserver). "tensorflow": TensorFlow alone.
PRELOADED = {"facepars": ("facepars.train_lib", "facepars.evaluate_lib", "facepars.predict_lib",
                          "facepars.export_lib", "facepars.verify_lib", "facepars.data.shards",
                          "facepars.data.pool", "facepars.data.contents"),
             "tensorflow": ("tensorflow",)}
_PACKET = 1 << 16  # a request or a reply is one packet (SOCK_SEQPACKET) of at most this


# --- the launcher process ---------------------------------------------------------------

def serve(path: str, kind: str) -> None:
    """Import ``PRELOADED[kind]``, then fork a child for each request on the socket at
    ``path``, and answer each with the child's pid, then its exit status and CPU
    seconds. Ends when the process that started it (a pytest worker) is gone."""
    for module in PRELOADED[kind]:
        importlib.import_module(module)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen()
    wakeup, wakeup_write = os.pipe()  # SIGCHLD wakes the select below
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    owner, waiting = os.getppid(), {}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"ready {usage.ru_utime + usage.ru_stime}", flush=True)
    while os.getppid() == owner:
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
_launchers: dict = {}  # kind -> {"path": its socket, "log": its log}


def _socket_path(kind: str) -> str:
    """The launcher of this process of ``kind``, started on first use."""
    if kind not in _launchers:
        directory = tempfile.mkdtemp(prefix="facepars-launcher-")
        path, log = os.path.join(directory, "socket"), os.path.join(directory, "log")
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), path, kind], cwd=REPO, text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(log, "w"),
            preexec_fn=_as_from_a_terminal)
        ready = proc.stdout.readline()  # an event: the line, or EOF if it failed
        if not ready.startswith("ready"):
            raise RuntimeError(f"the launcher did not start:\n{open(log).read()[-3000:]}")
        global cpu_seconds
        cpu_seconds += float(ready.split()[1])
        atexit.register(shutil.rmtree, directory, True)
        atexit.register(proc.kill)
        _launchers[kind] = {"path": path, "log": log}
    return _launchers[kind]["path"]


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
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    connection.connect(_socket_path(kind))
    request = json.dumps({"argv": argv, "env": env, "cwd": cwd}).encode()
    assert len(request) < _PACKET, "the request is longer than a packet"
    with open(os.devnull) as stdin:
        socket.send_fds(connection, [request], [stdin.fileno(), stdout.fileno(), stderr.fileno()])
    return Launched(argv, connection, _launchers[kind]["log"])


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # as under ``python -m``: the repository, not tests/
    serve(*sys.argv[1:])
