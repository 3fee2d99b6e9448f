import json

import numpy as np
import pytest
import skimage.data
from PIL import Image

from facepars.inference import Predictor

from conftest import run_cli


@pytest.fixture
def photos(tmp_path):
    """A real photo and its awkward variants, plus one broken file."""
    d = tmp_path / "photos"
    (d / "nested").mkdir(parents=True)
    astronaut = skimage.data.astronaut()  # 512x512 RGB, a real face
    Image.fromarray(astronaut).save(d / "astronaut.jpg")
    wide = Image.fromarray(astronaut[:300])
    exif = wide.getexif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    wide.save(d / "nested" / "rotated.jpg", exif=exif.tobytes())
    rgba = np.dstack([astronaut[:200, :260], np.full((200, 260), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    Image.fromarray(astronaut[..., 0]).save(d / "grey.jpg")
    Image.fromarray((astronaut[..., 1].astype(np.uint16) * 257)).save(d / "deep16.png")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


@pytest.mark.slow
def test_predict_cli_on_real_and_awkward_photos(trained_run, photos, tmp_path):
    out_dir = tmp_path / "out"
    proc = run_cli("facepars.predict", f"--model_path={trained_run}", f"--output_dir={out_dir}",
                   "--probabilities", str(photos), check=False)
    assert proc.returncode == 1
    assert "corrupt.jpg" in proc.stderr and "5 photos parsed" in proc.stdout
    sizes = {"astronaut": (512, 512), "nested/rotated": (512, 300), "rgba": (200, 260),
             "grey": (512, 512), "deep16": (512, 512)}
    for name, (h, w) in sizes.items():
        labels = Image.open(out_dir / f"{name}.labels.png")
        assert labels.mode == "P" and labels.size == (w, h), name
        assert np.asarray(labels).max() < 8
        assert Image.open(out_dir / f"{name}.overlay.jpg").size == (w, h)
        probs = np.load(out_dir / f"{name}.probs.npz")["probabilities"]
        assert probs.shape == (h, w, 8)
    summary = json.load(open(out_dir / "summary.json"))
    assert len(summary["photos"]) == 5 and "corrupt.jpg" in summary["failures"][0]
    assert all(abs(sum(v["classes"].values()) - 1) < 1e-6 for v in summary["photos"].values())
    assert not (photos / "astronaut.labels.png").exists()  # nothing written beside the inputs


def test_predictor_api_returns_arrays_at_the_photo_size(trained_run):
    predictor = Predictor.load(trained_run)
    photo = skimage.data.astronaut()[:333, :201]
    prediction = predictor.predict(photo, probabilities=True)
    assert prediction.labels.shape == (333, 201) and prediction.labels.dtype == np.uint8
    np.testing.assert_allclose(prediction.probabilities.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(prediction.probabilities.argmax(-1), prediction.labels)
