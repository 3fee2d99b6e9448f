"""PSPNet on ResNet50 (the notebook's main model): pyramid pooling over a stride-8 map."""

from __future__ import annotations

import keras
from keras import layers

from facepars.models import backbones
from facepars.models.layers import (
    conv_bn_relu,
    image_input,
    logits_at_input_size,
    resize_to,
    scaled,
)

BINS = (1, 2, 3, 6)  # the global bin and three finer ones, as in the paper
BACKBONE_OUTPUTS = ("conv3_block4_add",)  # what the decoder reads (facepars.models.modules)
CLASSIFIERS = ("psp_classifier",)


def pyramid_pool(x, bins: int, filters: int, name: str):
    """Average-pool to ``bins`` x ``bins`` cells covering the whole map, then upsample.

    The windows follow the feature map: stride ``size // bins`` and a window that
    stretches to the last pixel, so any input size works with built-in layers
    (windows overlap by a pixel or two where the size is not a multiple).
    """
    h, w = x.shape[1], x.shape[2]
    sh, sw = max(1, h // bins), max(1, w // bins)
    pool = (h - (bins - 1) * sh, w - (bins - 1) * sw)
    y = layers.AveragePooling2D(pool, strides=(sh, sw), name=f"{name}_pool")(x)
    y = conv_bn_relu(y, filters, 1, name=name)
    return resize_to(y, h, w, f"{name}_upsample")


def build(num_classes: int, input_size: int = 256, weights=None, width: float = 1.0) -> keras.Model:
    image = image_input(input_size)
    x = backbones.resnet50(image, width, weights, input_size)["stride8"]
    x = conv_bn_relu(x, scaled(512, width), 1, name="psp_reduce")
    branch = scaled(512, width) // len(BINS)
    pooled = [pyramid_pool(x, b, branch, f"psp_bin{b}") for b in BINS]
    x = layers.Concatenate(name="psp_concat")([x] + pooled)
    x = conv_bn_relu(x, scaled(512, width), 1, name="psp_fuse")
    x = layers.Conv2D(num_classes, 3, padding="same", name="psp_classifier")(x)
    return keras.Model(image, logits_at_input_size(x, input_size), name="pspnet_resnet50")
