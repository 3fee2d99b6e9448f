"""--precision=auto and the checks between strategy, precision and XLA."""

import pytest
import tensorflow as tf

from facepars.training import distribute


class _TPU(tf.distribute.TPUStrategy):
    """A TPUStrategy by type only: what choose_precision asks of it (none is reachable)."""

    def __init__(self):  # no TPU to connect to
        pass


def test_auto_precision_is_bfloat16_on_tpu_float16_on_gpu_float32_on_cpu(monkeypatch):
    cpu = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert distribute.choose_precision("auto", cpu) == "float32"
    assert distribute.choose_precision("auto", _TPU()) == "mixed_bfloat16"
    gpu = tf.config.LogicalDevice("/device:GPU:0", "GPU")
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: [gpu] if kind == "GPU" else [])
    assert distribute.choose_precision("auto", cpu) == "mixed_float16"
    assert distribute.choose_precision("mixed_bfloat16", cpu) == "mixed_bfloat16"  # as asked


def test_float16_on_a_tpu_is_refused_before_any_step():
    with pytest.raises(distribute.StrategyError, match="TPUs have no float16"):
        distribute.check_precision("mixed_float16", _TPU())
