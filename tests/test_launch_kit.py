"""The launch kit is real shell: it parses, and --dry-run prints the commands."""

import glob
import os
import subprocess
import sys

import pytest

import fixtures
from conftest import REPO

SCRIPTS = sorted(
    glob.glob(os.path.join(REPO, "tpu", "*.sh"))
    + glob.glob(os.path.join(REPO, "data_prep", "*.sh"))
)
ENV = dict(
    os.environ, PROJECT="proj", BUCKET="gs://bucket/fp", RUN="r1", WORKERS="h1:1,h2:2", INDEX="1"
)


@pytest.mark.parametrize("script", SCRIPTS, ids=os.path.basename)
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", script], check=True)


@pytest.mark.parametrize("script,expected", [
    ("tpu/create.sh", "gcloud compute tpus tpu-vm create facepars-tpu --project=proj"),
    ("tpu/train.sh", "--strategy=tpu --precision=mixed_bfloat16"),
    ("tpu/tensorboard.sh", "tensorboard --logdir gs://bucket/fp/runs"),
    ("tpu/teardown.sh", "gcloud compute tpus tpu-vm delete facepars-tpu"),
    ("tpu/multi_worker.sh", '"task": {"type": "worker", "index": 1}'),
])
def test_dry_run_prints_the_commands(script, expected):
    out = subprocess.run(["bash", os.path.join(REPO, script), "--dry-run"], env=ENV,
                         capture_output=True, text=True, check=True).stdout
    assert expected in out.replace("\\", "")


@pytest.mark.parametrize("accelerator,image", [("v4-8", "tpu-ubuntu2204-base"),
                                               ("v5litepod-8", "v2-alpha-tpuv5-lite"),
                                               ("v6e-8", "v2-alpha-tpuv6e")])
def test_create_uses_the_base_image_and_installs_the_tpu_extra(accelerator, image):
    """The VM image carries no TensorFlow of its own: the tpu extra's is the only one."""
    out = subprocess.run(["bash", os.path.join(REPO, "tpu/create.sh"), "--dry-run"],
                         env=dict(ENV, ACCELERATOR_TYPE=accelerator), capture_output=True,
                         text=True, check=True).stdout.replace("\\", "")
    assert f"--version={image}" in out and "pip install -e '.[tpu]'" in out


def test_dataflow_dry_run_builds_the_worker_image_and_submits_prepare():
    out = subprocess.run(["bash", os.path.join(REPO, "data_prep/dataflow.sh"), "lapa",
                          "gs://b/raw/lapa", "gs://b/lapa256", "--dry-run", "--image_size=256"],
                         env=ENV, capture_output=True, text=True, check=True).stdout
    out = out.replace("\\", "")
    assert "pip wheel --no-deps --wheel-dir dist ." in out
    assert "--config=data_prep/dataflow_image.yaml" in out
    assert ("facepars.prepare --source=lapa --input_dir=gs://b/raw/lapa "
            "--output_dir=gs://b/lapa256 --runner=beam") in out
    assert "runner=DataflowRunner,project=proj," in out and out.rstrip().endswith(
        "--image_size=256"
    )
    image = "us-central1-docker.pkg.dev/proj/facepars/prepare-worker:"
    assert f"sdk_container_image={image}" in out and f"_IMAGE={image}" in out
    predict = subprocess.run(["bash", os.path.join(REPO, "data_prep/dataflow.sh"), "predict",
                              "gs://b/export/saved_model", "gs://b/parsed", "--dry-run",
                              "--faces=detect", "gs://b/photos/*.jpg"],
                             env=ENV, capture_output=True, text=True, check=True).stdout
    predict = predict.replace("\\", "")
    assert ("facepars.predict --model_path=gs://b/export/saved_model "
            "--output_dir=gs://b/parsed --runner=beam") in predict
    assert "job_name=facepars-predict-" in predict and f"sdk_container_image={image}" in predict
    assert predict.rstrip().endswith("--faces=detect gs://b/photos/*.jpg")
    usage = subprocess.run(["bash", os.path.join(REPO, "data_prep/dataflow.sh")],
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_fetch_dry_run_and_inspect_raw(tmp_path):
    out = subprocess.run(["bash", os.path.join(REPO, "data_prep/fetch.sh"), "kaggle", str(tmp_path),
                          "--dry-run"], capture_output=True, text=True, check=True).stdout
    assert "kaggle datasets download -d ashish2001/multiclass-face-segmentation" in out
    fixtures.write_kaggle(str(tmp_path / "k"), splits=(("train", 3), ("val", 1)), size=(120, 90))
    proc = subprocess.run([sys.executable, os.path.join(REPO, "data_prep/inspect_raw.py"),
                           "--source=kaggle", f"--input_dir={tmp_path / 'k'}",
                           f"--out={tmp_path / 'raw.png'}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "train: 3 pairs" in proc.stdout and (tmp_path / "raw.png").exists()


def _supervised(tmp_path, codes, signal_it=False):
    """run_resuming.sh around a stand-in for train that exits with ``codes`` in turn."""
    import signal
    import time
    script = tmp_path / "fake_train.sh"
    script.write_text("n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count\n"
                      f"codes=({' '.join(map(str, codes))})\n"
                      "[ -e hold ] && { trap 'exit 143' TERM; touch held; "
                      "while :; do sleep 0.05; done; }\n"
                      "exit ${codes[$n]}\n")
    if signal_it:
        (tmp_path / "hold").touch()
    proc = subprocess.Popen(["bash", os.path.join(REPO, "tpu/run_resuming.sh"), "bash",
                             str(script)], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    if signal_it:
        while not (tmp_path / "held").exists():
            assert proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, int((tmp_path / "count").read_text()), err


def test_run_resuming_restarts_after_preemption_and_stops_otherwise(tmp_path):
    """143 (saved on SIGTERM) and 137 (killed) restart the same command; 0 and 1 end it;
    a SIGTERM to the supervisor reaches train and ends the loop (the machine goes)."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    code, runs, err = _supervised(tmp_path / "a", [143, 137, 0])
    assert (code, runs) == (0, 3) and err.count("resuming from its backup") == 2
    assert _supervised(tmp_path / "b", [1, 0])[:2] == (1, 1)
    assert _supervised(tmp_path / "c", [0], signal_it=True)[:2] == (143, 1)
