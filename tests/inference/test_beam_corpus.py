"""predict --runner=beam: RunInference on Beam's local runner writes what the local run writes."""

import json
import os

import pytest
from PIL import Image

from facepars import predict_lib  # the beam extra, which make test installs
from facepars.data import synthetic
from facepars.data.beam_options import pipeline_options
from facepars.faces.detection import FaceFilter
from facepars.inference import beam_corpus
from facepars.inference.photo_outputs import PHOTO_EXTENSIONS


def _photos(root):
    """Photos of several sizes and formats, one in a subdirectory, one unreadable,
    one named that is not there; the last two named by a list file (@LIST)."""
    os.makedirs(root / "sub")
    for i, (h, w, ext) in enumerate([(120, 90, "jpg"), (70, 130, "png"), (96, 96, "jpg")]):
        path = root / ("sub" if i == 2 else "") / f"p{i}.{ext}"
        Image.fromarray(synthetic.compose(3, i, h, w, 1 + i % 2)[0]).save(path)
    (root / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg")
    loose = root.parent / "loose"
    loose.mkdir()
    Image.fromarray(synthetic.render(4, 0, 80, 60)[0]).save(loose / "alone.jpg")
    (loose / "list.txt").write_text(f"# loose photos\n{loose / '*.jpg'}\n\n  "
                                    f"{loose / 'missing.jpg'}\n")
    return [str(root), "@" + str(loose / "list.txt")]


@pytest.mark.parametrize("faces", ["whole", "detect"])
def test_beam_writes_the_bytes_and_summary_the_local_run_writes(tiny_run, tmp_path, faces):
    inputs = _photos(tmp_path / "photos")
    local = predict_lib.run(tiny_run, inputs, str(tmp_path / "local"), batch_size=2,
                            faces=faces)
    job = beam_corpus.Job(tiny_run, str(tmp_path / "beam"), faces, FaceFilter(), False, 2)
    summary, failures, counters = beam_corpus.run(job, inputs, pipeline_options("", 1),
                                                   PHOTO_EXTENSIONS)
    assert summary == local[0] and sorted(failures) == sorted(local[1])
    assert len(summary) == 4 and len(failures) == 2, failures
    assert {"broken.jpg", "missing.jpg: file not found"} == {
        "broken.jpg" if "broken.jpg" in f else f[f.index("missing.jpg"):] for f in failures}
    # Beam ran it: its counters (RunInference's own among them) saw every photo,
    # face and failure.
    faces_found = sum(len(r.get("faces", [])) for r in summary.values())
    assert counters == {"photos": 4, "faces": faces_found, "failures": 2,
                        "num_inferences": 4}, counters
    for name in summary:
        stem = os.path.splitext(name)[0] + ".labels.png"
        assert (tmp_path / "beam" / stem).read_bytes() == (tmp_path / "local" / stem).read_bytes()
    written = json.load(open(tmp_path / "beam" / "summary.json"))
    assert written["faces"] == json.load(open(tmp_path / "local" / "summary.json"))["faces"]


@pytest.mark.slow
def test_the_command_runs_on_beam_with_its_options_and_exits_1_on_failures(tiny_run,
                                                                          tmp_path):
    """``predict --runner=beam`` as a user types it: the options reach Beam, every
    readable photo is written, the unreadable and the missing are listed and the exit
    code is 1. (An unknown option is refused before TensorFlow loads:
    tests/core/test_cli.py.)"""
    from conftest import run_cli
    inputs = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    proc = run_cli("facepars.predict", "--runner=beam", f"--model_path={tiny_run}",
                   f"--output_dir={out}", "--faces=whole",
                   "--beam_pipeline_options=direct_num_workers=1,direct_running_mode=in_memory",
                   *inputs, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "4 photos parsed" in proc.stdout and ", 2 failed" in proc.stdout
    assert proc.stderr.count("  failed: ") == 2
    summary = json.load(open(out / "summary.json"))
    assert len(summary["photos"]) == 4
