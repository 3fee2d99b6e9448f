"""LR-ASPP on MobileNetV3-Large: the real-time model for phones and browsers.

Searching for MobileNetV3 (Howard et al., 2019), section 6.3: a 1x1 branch gated
by a global-pool attention branch on the stride-16 features, upsampled and summed
with a linear classifier on the stride-8 features. No atrous convolutions, no
large concatenations: cheap on mobile and fully supported by TFLite.
"""

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

BACKBONE_OUTPUTS = ("expanded_conv_5_add", "expanded_conv_11_add")  # facepars.models.modules
CLASSIFIERS = ("lraspp_high_classifier", "lraspp_low_classifier")


def build(num_classes: int, input_size: int = 256, weights=None, width: float = 1.0) -> keras.Model:
    image = image_input(input_size)
    features = backbones.mobilenetv3large(image, width, weights, input_size)
    low, high = features["stride8"], features["stride16"]
    filters = scaled(128, width)
    x = conv_bn_relu(high, filters, 1, name="lraspp_branch")
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="lraspp_pool")(high)
    gate = layers.Conv2D(filters, 1, activation="sigmoid", name="lraspp_gate")(gate)
    x = layers.Multiply(name="lraspp_attend")([x, gate])
    x = resize_to(x, low.shape[1], low.shape[2], "lraspp_upsample")
    x = layers.Conv2D(num_classes, 1, name="lraspp_high_classifier")(x)
    low = layers.Conv2D(num_classes, 1, name="lraspp_low_classifier")(low)
    x = layers.Add(name="lraspp_sum")([x, low])
    return keras.Model(image, logits_at_input_size(x, input_size), name="lraspp_mobilenetv3")
