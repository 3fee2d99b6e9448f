"""One training step under MirroredStrategy (two logical CPUs) vs one device.

Run by tests/test_train.py in a fresh process: ``python tests/mirrored_step.py DATA_DIR``
prints ``{"worst": ..., "moved": ...}``: the largest difference between the two
weight updates relative to the update's size, over all variables, and how many
variables moved. Layers run in float64 (the loss stays float32), so what remains
is the strategy's doing; without synchronised batch norm it is 44 %.
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
keras.mixed_precision.set_global_policy("float64")

from facepars.configs import smoke  # noqa: E402
from facepars.configs.common import NO_AUGMENTATION  # noqa: E402
from facepars.data import pipeline, schema  # noqa: E402
from facepars.models import build_model, configure_batchnorm  # noqa: E402
from facepars.training import task  # noqa: E402


def parser(strategy, table, weights=None):
    with strategy.scope():
        network = build_model("tests.tiny_family", table.num_classes, 64, width=0.25)
        configure_batchnorm(network, 0.9, synchronized=True)
        if weights is not None:
            network.set_weights(weights)
        model = task.FaceParser(network, table, smoke.get_config().loss, NO_AUGMENTATION)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        model(tf.zeros((1, 64, 64, 3)))
    return model


def main(data_dir):
    manifest = schema.Manifest.load(data_dir)
    batch = next(iter(pipeline.make_dataset(manifest, "train", False,
                                            pipeline.InputConfig(global_batch_size=8))))
    one = parser(tf.distribute.OneDeviceStrategy("/cpu:0"), manifest.class_table)
    start = [w.numpy() for w in one.network.weights]
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two = parser(mirrored, manifest.class_table, start)
    data = tf.data.Dataset.from_tensors(batch)
    one.fit(data, epochs=1, verbose=0, shuffle=False)
    two.fit(mirrored.experimental_distribute_dataset(data), epochs=1, verbose=0, shuffle=False)
    worst, moved = 0.0, 0
    for a, b, s in zip(one.network.weights, two.network.weights, start):
        step_one, step_two = a.numpy() - s, b.numpy() - s
        scale = np.abs(step_one).max()
        worst = max(worst, float(np.abs(step_one - step_two).max() / (scale + 1e-7)))
        moved += int(scale > 1e-4)
    print(json.dumps({"worst": worst, "moved": moved}))


if __name__ == "__main__":
    main(sys.argv[1])
