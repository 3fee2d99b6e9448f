"""Every command line answers bad or missing flags the same way (facepars.core.cli).

Run as a user runs them: ``python -m facepars.<command>`` in a fresh process,
without TF_CPP_MIN_LOG_LEVEL set, so TensorFlow's start-up lines would show.
What the flags alone decide (help, a missing, unknown or bad flag, a local input
path that does not exist) runs with TensorFlow replaced by tests/no_tensorflow,
which fails on import: answered before TensorFlow loads, as it must be to answer
at once.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import launcher
from conftest import REPO

COMMANDS = ["prepare", "verify", "train", "evaluate", "predict", "export"]
TF_NOISE = ("cpu_feature_guard", "absl::InitializeLog", "oneDNN", "WARNING:tensorflow")


NO_TENSORFLOW = os.path.join(REPO, "tests", "no_tensorflow")
UNKNOWN_BEAM = "--beam_pipeline_options: unknown option(s) no_such"


def _run(args, tensorflow: bool = False):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO if tensorflow else os.pathsep.join([NO_TENSORFLOW, REPO])
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _all(cases, tensorflow=()):
    """Each case's process, two at a time; those named in ``tensorflow`` may load it."""
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(cases, pool.map(lambda c: _run(cases[c], c in tensorflow), cases)))


@pytest.mark.slow
def test_a_missing_required_flag_is_one_line_and_exit_2():
    """Each command with no flags at all (one test: six interpreters started in pairs)."""
    for command, proc in _all({c: [f"facepars.{c}"] for c in COMMANDS}).items():
        assert proc.returncode == 2, (command, proc.stderr[-2000:])
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"{command}: --") and "required" in lines[0]
        assert not any(noise in proc.stderr + proc.stdout for noise in TF_NOISE)


@pytest.mark.slow
def test_bad_flags_and_bad_input_are_one_line(tmp_path):
    procs = _all(
        {
            "unknown flag": ["facepars.verify", "--data_dri=/x"],
            "unknown config field": ["facepars.train", "--config=smoke", "--data_dir=/x",
                                     "--model_dir=/y", "--config.augment.flipp=0"],
            "bad value": ["facepars.prepare", f"--output_dir={tmp_path}/o", "--image_size=big"],
            "stray argument": [
                "facepars.export",
                "--model_path=/x",
                f"--output_dir={tmp_path}",
                "oops",
            ],
            "missing data": ["facepars.verify", f"--data_dir={tmp_path}/none"],
            "missing model": [
                "facepars.evaluate",
                f"--model_path={tmp_path}/run",
                f"--data_dir={tmp_path}",
            ],
            "not a data set": ["facepars.verify", f"--data_dir={tmp_path}"],
            "verbose": ["facepars.verify", f"--data_dir={tmp_path}", "--verbosity=1"],
            "bad beam option (prepare)": ["facepars.prepare", f"--output_dir={tmp_path}/o",
                                          "--runner=beam", "--beam_pipeline_options=no_such=1"],
            "bad beam option (predict)": ["facepars.predict", "--runner=beam", "--model_path=/x",
                                          f"--output_dir={tmp_path}/p",
                                          "--beam_pipeline_options=no_such=1", "photo.jpg"],
        },
        tensorflow=("not a data set", "verbose"),
    )
    for case, code, text in [("unknown flag", 2, "data_dri"), ("bad value", 2, "image_size"),
                             ("unknown config field", 2, "flipp"),
                             ("stray argument", 2, "'oops'"),
                             ("missing data", 1, f"verify failed: {tmp_path}/none does not "
                                                 "exist (--data_dir)"),
                             ("missing model", 1, f"evaluate failed: {tmp_path}/run does not "
                                                  "exist (--model_path)"),
                             ("not a data set", 1, f"verify failed: {tmp_path}/manifest.json: "
                                                   "no manifest"),
                             ("bad beam option (prepare)", 1, "prepare failed: " + UNKNOWN_BEAM),
                             ("bad beam option (predict)", 1, "predict failed: " + UNKNOWN_BEAM)]:
        proc = procs[case]
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == code and len(lines) == 1 and text in lines[0], (case, proc.stderr)
        assert not any(noise in proc.stderr for noise in TF_NOISE), case
    # --verbosity=1 brings TensorFlow's own lines back.
    assert any(noise in procs["verbose"].stderr for noise in TF_NOISE)


@pytest.mark.slow
def test_helpshort_lists_the_commands_own_flags_and_helpfull_all():
    """Each command's --helpshort: exit 0, its own flags listed (the ones its module
    defines and the shared ones facepars.core.cli defines for it), no TensorFlow
    noise; --helpfull (absl's, the same for all) also absl's own flags."""
    own = {"prepare": ["--source", "--runner"], "verify": ["--data_dir"],
           "train": ["--init_from", "--strategy", "--tpu"],
           "evaluate": ["--original_resolution", "--strategy", "--min_score"],
           "predict": ["--detect_every", "--faces", "--min_face", "--runner", "--workers"],
           "export": ["--tflite", "--faces"]}
    procs = _all({(c, "helpshort"): [f"facepars.{c}", "--helpshort"] for c in COMMANDS}
                 | {("prepare", "helpfull"): ["facepars.prepare", "--helpfull"]})
    for (command, which), proc in procs.items():
        assert proc.returncode == 0, (command, which, proc.stderr[-2000:])
        listed = {line.split(":")[0].strip().replace("[no]", "")
                  for line in proc.stdout.splitlines() if line.startswith("  --")}
        assert set(own[command]) <= listed, (command, which, sorted(listed))
        assert ("--verbosity" in proc.stdout) == (which == "helpfull"), (command, which)
        assert not any(noise in proc.stderr + proc.stdout for noise in TF_NOISE)


def test_a_readme_command_as_written_expands_the_home_directory(tmp_path):
    """``--output_dir=~/data/...``: bash leaves that ``~`` alone; prepare must not make
    a directory named ``~`` where it runs, but write under $HOME. The word is the
    one bash passes on (asked of bash), the command a child of the test launcher
    run where the user is (tests/launcher.py)."""
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, HOME=str(tmp_path / "home"), PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    word = subprocess.run(["bash", "-c", "printf %s --output_dir=~/data/syn"], env=env,
                          capture_output=True, text=True, check=True).stdout
    assert word == "--output_dir=~/data/syn"
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        proc = launcher.launch(["-m", "facepars.prepare", "--source=synthetic", "--num_examples=5",
                                "--image_size=32", "--synthetic_size=48", word],
                               env, out, err, cwd=str(work))
        assert proc.wait(300) == 0, (tmp_path / "err").read_text()[-2000:]
    assert (tmp_path / "home" / "data" / "syn" / "manifest.json").exists()
    assert not (work / "~").exists()
