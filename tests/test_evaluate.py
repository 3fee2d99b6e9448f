import json
import os

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from facepars import evaluate
from facepars.classes import IGNORE_LABEL
from facepars.models import load_model

from conftest import read_split, run_cli


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


@pytest.mark.slow
def test_evaluate_cli_at_original_resolution(trained_run, synthetic_data, tmp_path):
    out = run_cli(
        "facepars.evaluate",
        f"--model_path={trained_run}",
        f"--data_dir={synthetic_data}",
        "--split=val",
        f"--output_dir={tmp_path}",
        "--original_resolution",
        "--strategy=one_device",
    )
    assert "at original resolution" in out.stdout and "mean (face)" in out.stdout
    report = json.load(open(tmp_path / "val_report.json"))
    net = report["network_resolution"]["scores"]["pixel_accuracy"]
    orig = report["original_resolution"]["scores"]["pixel_accuracy"]
    assert abs(net - orig) < 0.05
    assert (tmp_path / "val_confusion_original.png").exists()
