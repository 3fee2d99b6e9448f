"""What every ``python -m facepars.<command>`` shares (the README's "Command lines").

* A command defines its flags in ``define_flags()``, never at import, so that
  the modules import together (tests, notebooks) without clashing flag names;
  ``cli.run(main, define_flags, required=...)`` at the bottom of the module
  defines, parses and checks them.
* A missing required flag, an unknown flag or a bad value: one line on stderr,
  ``<command>: <problem>``, and exit code 2.
* An error the user can act on (facepars.core.errors.FaceparsError, a missing file):
  one line, ``<command> failed: <message>``, and exit code 1. Anything else is a
  bug and keeps its traceback.
* ``--helpshort`` (the command's own flags), ``--helpfull`` (absl's too) and
  ``--help`` print and exit 0, as a help request that was answered (absl exits 1).
* Path flags (``*_dir``, ``*_path``) and positional paths expand a leading ``~``,
  which the shell does not after ``=``.
* A path flag the command reads (``inputs``) set to a local path that does not
  exist is that error, said before TensorFlow loads (a URL is the command's to
  check, through TensorFlow's file systems).
* TensorFlow's C++ start-up lines, its Python warnings and Keras's are hidden;
  ``--verbosity=1`` (or more) shows them again.
* The flags are parsed and checked before TensorFlow loads: a command module
  imports only what its flags need, and its ``main`` imports the work
  (``facepars.<command>_lib``), so ``--helpshort`` or a misspelt flag answers at
  once instead of after TensorFlow's seconds of start-up.

No TensorFlow import here: ``quiet_tensorflow`` must run before TensorFlow loads.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings

from absl import app, flags

from facepars.core import files
from facepars.core.errors import FaceparsError

FLAGS = flags.FLAGS

USAGE_EXIT, FAILURE_EXIT = 2, 1
HELP_FLAGS = ("--help", "--helpshort", "--helpfull", "--helpxml", "-h", "-?")
# What --strategy and train's --precision take (facepars.training.distribute).
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
# What train's --init_modules takes for every module (facepars.training.initialization).
ALL_MODULES = "all"


def _verbosity(argv: list[str]) -> int:
    """``--verbosity``/``-v`` as absl will parse it, read before absl does."""
    value = 0
    for i, arg in enumerate(argv):
        for prefix in ("--verbosity=", "-v="):
            if arg.startswith(prefix):
                value = arg[len(prefix):]
        if arg in ("--verbosity", "-v") and i + 1 < len(argv):
            value = argv[i + 1]
    try:
        return int(value)
    except ValueError:
        return 0


def quiet_tensorflow(argv: list[str]) -> None:
    """Hide TensorFlow's C++ start-up logging unless the user asked for more.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` (errors only) before TensorFlow is imported;
    a value the user set in the environment wins. Some lines ignore that level
    (absl writes everything before its InitializeLog, as TensorFlow 2.21's oneDNN
    notice on some CPUs), so at that level TensorFlow is imported here with the
    process's stderr captured, and what it wrote is shown only if the import fails.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _verbosity(argv) > 0 else "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] < "2":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def define_strategy_flags() -> None:
    """--strategy and --tpu, the same for every command that runs a model
    (facepars.training.distribute makes the strategy)."""
    flags.DEFINE_enum("strategy", "auto", list(STRATEGIES),
                      "auto: TPU if one is there, else mirrored over the GPUs, else the CPU.")
    flags.DEFINE_string("tpu", None, "TPU name or grpc:// address (for --strategy=tpu or auto).")


def define_face_flags() -> None:
    """--faces, --min_score, --min_face: how predict and evaluate find faces in photos,
    and whether and how export's ``parse_photos`` does."""
    flags.DEFINE_enum("faces", "auto", ["auto", "detect", "whole"],
                      "detect: find each face and parse it aligned as in training; whole: the "
                      "whole photo into the network; auto: detect if the detect extra is "
                      "installed and the model records its framing.")
    flags.DEFINE_float("min_score", 0.9, "Detector confidence a face needs (--faces=detect).")
    flags.DEFINE_float("min_face", 20.0, "Smallest face box width in pixels (--faces=detect).")


def define_runner_flags(local: str, workers: str, runner: str = "local",
                        options: str = "") -> None:
    """--runner, --beam_pipeline_options, --workers: where prepare's and predict's work
    runs. ``local`` says what the local runner is for the command, ``workers`` what
    its worker count counts; both default to every core."""
    flags.DEFINE_enum("runner", runner, ["local", "beam"],
                      f"local: {local}; beam: Apache Beam (the facepars[beam] extra), e.g. on "
                      "Dataflow, Flink or Spark.")
    flags.DEFINE_string("beam_pipeline_options", options,
                        "With --runner=beam: Beam options as k=v,k=v, e.g. 'runner=DataflowRunner,"
                        "project=P,region=R,temp_location=gs://B/tmp'. Default: Beam's local "
                        "FnApiRunner with --workers processes (or as direct_num_workers and "
                        "direct_running_mode say).")
    flags.DEFINE_integer("workers", os.cpu_count() or 1, workers, lower_bound=1)


def _command(main) -> str:
    return main.__module__.rsplit(".", 1)[-1] if main.__module__ != "__main__" else \
        os.path.splitext(os.path.basename(sys.argv[0]))[0]


def fail(command: str, message: str, code: int = FAILURE_EXIT):
    print(f"{command}: {message}", file=sys.stderr)
    sys.exit(code)


def _is_path_flag(name: str) -> bool:
    return name.endswith(("_dir", "_path"))


def _expand_home(args: list[str]) -> None:
    """``--data_dir=~/data``: the shell leaves a ``~`` after ``=`` as it is, so path
    flags (and positional paths) expand it here, as the shell would after a space."""
    for name in FLAGS:
        value = FLAGS[name].value
        if _is_path_flag(name) and isinstance(value, str) and value.startswith("~"):
            FLAGS[name].value = os.path.expanduser(value)
    args[1:] = [os.path.expanduser(a) if a.startswith("~") else a for a in args[1:]]


def _check_inputs(inputs: tuple[str, ...]) -> None:
    """Each flag of ``inputs`` that is set names an existing path, unless it is a URL."""
    for name in inputs:
        value = FLAGS[name].value
        if value and not files.is_url(value) and not os.path.exists(value):
            raise FileNotFoundError(f"{value} does not exist (--{name})")


def run(main, define_flags, required: tuple[str, ...] = (), argv: list[str] | None = None,
        positional: str | None = None, check=None, inputs: tuple[str, ...] = ()) -> None:
    """Define, parse and check the flags, then run ``main(argv)`` under the conventions above.

    ``positional`` names the positional arguments a command needs (predict's
    photos); without it, positional arguments are refused. ``check()``, if given,
    checks what absl's flag definitions cannot (prepare's and predict's Beam
    options), also before TensorFlow loads; it raises FaceparsError. ``inputs``
    names the path flags the command reads, which must exist.
    """
    command = _command(main)
    define_flags()
    for flag in FLAGS.get_flags_for_module(__name__):  # the shared flags it defined here
        FLAGS.register_key_flag_for_module(sys.argv[0], flag)  # listed by its --helpshort

    def parse(args):
        try:
            return FLAGS(args)
        except flags.Error as e:
            fail(command, f"{e} (see --helpshort)", USAGE_EXIT)
        except KeyError as e:  # --config.<field> naming no field of the config's dataclass
            fail(command, f"{e.args[0]} (see --helpshort)", USAGE_EXIT)
        except SystemExit as e:
            if e.code == FAILURE_EXIT and any(a in HELP_FLAGS for a in args[1:]):
                raise SystemExit(0) from None
            raise

    def checked_main(args):
        if _verbosity(sys.argv) <= 0:
            warnings.filterwarnings("ignore")
            logging.getLogger("tensorflow").setLevel(logging.ERROR)
        missing = [f"--{name}" for name in required if FLAGS[name].value in (None, "")]
        if missing:
            names = (
                ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
            )
            fail(command, f"{names} {'is' if len(missing) == 1 else 'are'} required "
                          "(see --helpshort)", USAGE_EXIT)
        _expand_home(args)
        if len(args) > 1 and positional is None:
            fail(command, f"unexpected argument {args[1]!r} (flags are --name=value)", USAGE_EXIT)
        if positional is not None and len(args) < 2:
            fail(command, f"give {positional}", USAGE_EXIT)
        try:
            if check is not None:
                check()
            _check_inputs(inputs)
            quiet_tensorflow(sys.argv)
            return main(args)
        except (FaceparsError, FileNotFoundError) as e:
            fail(f"{command} failed", str(e))

    app.run(checked_main, argv=argv, flags_parser=parse)
