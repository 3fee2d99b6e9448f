"""A model family of a dozen layers, for tests whose property does not depend on the network.

Loaded as a user's own family is (``--config.model=tests.tiny_family``,
facepars.models.family): LR-ASPP's head on a backbone of two blocks, with each
kind of layer the registered families train (convolution, depthwise
convolution, batch norm, hard-swish, a squeeze-and-excite gate, bilinear
resizing, the float32 logits). A process traces and compiles its step in a
fraction of MobileNetV3's time. The tests of the loop, the strategies and the
commands train it (preemption, replicas, XLA against no XLA, the life of a
model in each mixed precision, fine-tuning, evaluate, predict); what depends on
a registered family stays on it (each family's XLA step and its round trip in
both mixed precisions, the learning run, every export). BUILD_NOTES.md, "The
test suite's time", lists both.
"""

import keras
from keras import layers

from facepars.models.layers import (
    conv_bn_relu,
    image_input,
    logits_at_input_size,
    resize_to,
    scaled,
)

BACKBONE_OUTPUTS = ("tiny_block1_bn", "tiny_block2_bn")
CLASSIFIERS = ("tiny_high_classifier", "tiny_low_classifier")


def _block(x, filters: int, name: str):
    """Stride 2: depthwise 3x3, hard-swish, a squeeze-and-excite gate, 1x1 projection."""
    x = layers.DepthwiseConv2D(3, 2, padding="same", use_bias=False, name=f"{name}_depthwise")(x)
    x = layers.Activation("hard_swish", name=f"{name}_hard_swish")(x)
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    gate = layers.Conv2D(x.shape[-1], 1, activation="hard_sigmoid", name=f"{name}_excite")(gate)
    x = layers.Multiply(name=f"{name}_gate")([x, gate])
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def build(num_classes: int, input_size: int = 256, weights=None, width: float = 1.0):
    if weights:
        raise ValueError("tests.tiny_family has no pretrained weights")
    image = image_input(input_size)
    x = conv_bn_relu(image, scaled(16, width), 3, name="tiny_stem")
    low = _block(layers.MaxPooling2D(name="tiny_pool")(x), scaled(24, width), "tiny_block1")
    high = _block(low, scaled(32, width), "tiny_block2")
    x = conv_bn_relu(high, scaled(32, width), 1, name="tiny_branch")
    x = resize_to(x, low.shape[1], low.shape[2], "tiny_upsample")
    x = layers.Conv2D(num_classes, 1, name="tiny_high_classifier")(x)
    low = layers.Conv2D(num_classes, 1, name="tiny_low_classifier")(low)
    x = layers.Add(name="tiny_sum")([x, low])
    return keras.Model(image, logits_at_input_size(x, input_size), name="tiny_family")
