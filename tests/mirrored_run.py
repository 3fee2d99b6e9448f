"""train_lib.run on one device and under MirroredStrategy (two logical CPUs), same data.

Run by tests/test_train.py in a fresh process: ``python tests/mirrored_run.py
DATA_DIR OUT_DIR`` trains the smoke config for 2 epochs of 2 steps, with
validation, no augmentation and deterministic input order, into
OUT_DIR/one_device and OUT_DIR/mirrored, and prints the two runs' validation
confusion matrices as JSON. A fresh process because TensorFlow keeps collective
instances per process: a MirroredStrategy created after others in one process
can meet a cached instance of another model ("Shape mismatch in the collective
instance").
"""

import dataclasses
import json
import os
import sys

import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

from facepars import train_lib  # noqa: E402
from facepars.configs import smoke  # noqa: E402
from facepars.configs.common import NO_AUGMENTATION  # noqa: E402


def config():
    cfg = smoke.get_config()
    cfg.model = "tests.tiny_family"  # what is compared is the strategy's (tests/tiny_family.py)
    cfg.epochs, cfg.steps_per_epoch, cfg.batch_size, cfg.overlay_images = 2, 2, 8, 0
    cfg.optimizer.momentum = 0.0
    cfg.augment = dataclasses.replace(NO_AUGMENTATION)
    return cfg


def main(data_dir, out_dir):
    confusions = {name: train_lib.run(config(), data_dir, os.path.join(out_dir, name), name)
                  ["val_confusion"] for name in ("one_device", "mirrored")}
    print(json.dumps(confusions))


if __name__ == "__main__":
    main(*sys.argv[1:3])
