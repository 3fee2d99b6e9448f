import json
import os

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import confusion_matrix

from conftest import read_split, run_cli
from facepars import evaluate
from facepars.classes import IGNORE_LABEL, SOURCE_TABLES, TAXONOMIES
from facepars.data import images, synthetic
from facepars.inference import logits_to_photo
from facepars.models import load_model


def _direct_confusion(model_dir, data_dir, split):
    model = load_model(os.path.join(model_dir, "best.keras"))
    records = read_split(data_dir, split)
    imgs = np.stack([r[0] for r in records.values()]).astype(np.float32) / 255.0
    masks = np.stack([r[1] for r in records.values()])
    predicted = np.argmax(model(imgs, training=False), -1)
    keep = masks != IGNORE_LABEL
    return confusion_matrix(masks[keep], predicted[keep], labels=range(8))


@pytest.mark.parametrize("strategy", ["one_device", "mirrored"])
def test_evaluate_equals_metrics_computed_from_the_predictions(trained_run, synthetic_data,
                                                              tmp_path, strategy):
    result = evaluate.run(trained_run, synthetic_data, "val", str(tmp_path), batch_size=6,
                          strategy_name=strategy)
    expected = _direct_confusion(trained_run, synthetic_data, "val")
    np.testing.assert_array_equal(result["network_resolution"]["confusion"], expected)
    report = json.load(open(tmp_path / "val_report.json"))
    assert report["records"] == 8
    assert (tmp_path / "val_confusion.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("mode", ["stretch", "pad"])
def test_original_resolution_undoes_stretch_and_pad(mode):
    """A model that predicts the resized ground truth scores >= 0.98 IoU per class
    once its logits are taken back to the photo's own size (for classes of 2000+
    pixels: a thin part's one-pixel resampling border alone costs more)."""
    lut, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES["seed8"])
    for index, (h, w) in enumerate([(320, 256), (256, 340)]):
        mask = lut[synthetic.render(4, index, h, w)[1]]
        geo = images.geometry(h, w, 256, mode)
        small = images.resize_mask(mask, geo)
        logits = tf.one_hot(np.where(small == IGNORE_LABEL, 0, small), 8) * 10.0
        back = np.argmax(logits_to_photo(logits, geo), -1)
        for c in np.unique(mask):
            inter = ((back == c) & (mask == c)).sum()
            union = ((back == c) | (mask == c)).sum()
            assert inter / union >= 0.98 or (mask == c).sum() < 2000, (mode, c, inter / union)


@pytest.mark.slow
def test_evaluate_cli_at_original_resolution(trained_run, synthetic_data, tmp_path):
    out = run_cli("facepars.evaluate", f"--model={trained_run}", f"--data_dir={synthetic_data}",
                  "--split=val", f"--output_dir={tmp_path}", "--original_resolution",
                  "--strategy=one_device")
    assert "at original resolution" in out.stdout and "mean (face)" in out.stdout
    report = json.load(open(tmp_path / "val_report.json"))
    net = report["network_resolution"]["scores"]["pixel_accuracy"]
    orig = report["original_resolution"]["scores"]["pixel_accuracy"]
    assert abs(net - orig) < 0.05
    assert (tmp_path / "val_confusion_original.png").exists()
