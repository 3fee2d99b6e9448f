import json
import subprocess
import sys

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
