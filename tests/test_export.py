import json
import subprocess
import sys

import numpy as np
import pytest

from facepars import export


@pytest.mark.slow
def test_export_saved_model_and_tflite_with_parity(trained_run, synthetic_data, tmp_path):
    report = export.run(trained_run, str(tmp_path / "export"), synthetic_data,
                        ["float32", "float16", "int8"], parity_records=8)
    agreement = report["agreement"]
    assert agreement["saved_model"] >= 0.999
    assert agreement["tflite_float32"] >= 0.995 and agreement["tflite_float16"] >= 0.995
    assert agreement["tflite_int8"] >= 0.90  # reported; the target is 0.97 on real runs
    assert report["failed"] == []
    table = json.load(open(tmp_path / "export" / "class_table.json"))
    assert table["class_table"]["classes"][7]["name"] == "glasses"

    # A fresh process, TensorFlow only: two input sizes, one image, and the class table.
    code = f"""
import numpy as np, tensorflow as tf, sys
assert 'facepars' not in sys.modules
m = tf.saved_model.load({str(tmp_path / 'export' / 'saved_model')!r})
for h, w in ((100, 70), (64, 200)):
    out = m.signatures['serving_default'](images=tf.zeros((2, h, w, 3), tf.uint8))
    assert out['labels'].shape == (2, h, w) and out['labels'].dtype == tf.uint8
    assert out['probabilities'].shape == (2, h, w, 8)
one = m.signatures['serve_image'](image=tf.zeros((90, 90, 3), tf.uint8))
assert one['labels'].shape == (90, 90)
names = m.signatures['class_table']()['names'].numpy()
assert names[6] == b'ears', names
print('ok')
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_a_model_trained_in_mixed_precision_exports_evaluates_and_predicts(
        synthetic_data, tmp_path, precision):
    """Trained in mixed precision, everything after training runs the float32 rebuild:
    the same parity thresholds as float32 models, and evaluate/predict load it.
    Before, the TFLite converter failed on the saved mixed policies."""
    import keras
    from facepars import evaluate, train
    from facepars.configs import smoke
    from facepars.inference import Predictor
    from facepars.models import load_model
    cfg = smoke.get_config()
    cfg.epochs, cfg.steps_per_epoch, cfg.overlay_images, cfg.batch_size = 1, 3, 0, 8
    model_dir = str(tmp_path / "run")
    try:
        train.run(cfg, synthetic_data, model_dir, "one_device", precision=precision)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    network = load_model(str(tmp_path / "run" / "best.keras"))
    assert {layer.dtype_policy.name for layer in network.layers} == {"float32"}

    report = export.run(model_dir, str(tmp_path / "export"), synthetic_data,
                        ["float32", "float16", "int8"], parity_records=8)
    assert report["failed"] == [], report["agreement"]
    assert report["agreement"]["tflite_int8"] >= 0.90
    result = evaluate.run(model_dir, synthetic_data, "val", None, batch_size=4)
    assert np.asarray(result["network_resolution"]["confusion"]).sum() > 0
    photo = np.zeros((50, 70, 3), np.uint8)
    assert Predictor.load(model_dir).predict(photo).labels.shape == (50, 70)
