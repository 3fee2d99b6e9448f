"""DeepLabV3+ on EfficientNetB0 (the notebook's second model): ASPP and a low-level decoder."""

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

RATES = (6, 12, 18)  # dilations of the three atrous branches at output stride 16

BACKBONE_OUTPUTS = ("block3a_expand_bn", "block6a_expand_bn")  # facepars.models.modules
CLASSIFIERS = ("decoder_classifier",)


def aspp(x, filters: int):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3, and image pooling."""
    h, w = x.shape[1], x.shape[2]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_image_pool")(x)
    pooled = conv_bn_relu(pooled, filters, 1, name="aspp_image")
    pooled = layers.UpSampling2D((h, w), name="aspp_image_upsample")(pooled)
    branches = [conv_bn_relu(x, filters, 1, name="aspp_1x1")]
    branches += [conv_bn_relu(x, filters, 3, dilation=r, name=f"aspp_rate{r}") for r in RATES]
    x = layers.Concatenate(name="aspp_concat")(branches + [pooled])
    x = conv_bn_relu(x, filters, 1, name="aspp_project")
    return layers.Dropout(0.1, name="aspp_dropout")(x)


def build(num_classes: int, input_size: int = 256, weights=None, width: float = 1.0) -> keras.Model:
    image = image_input(input_size)
    features = backbones.efficientnetb0(image, width, weights, input_size)
    low = features["stride4"]
    x = aspp(features["stride16"], scaled(256, width))
    x = resize_to(x, low.shape[1], low.shape[2], "decoder_upsample")
    low = conv_bn_relu(low, scaled(48, width), 1, name="decoder_low")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = conv_bn_relu(x, scaled(256, width), 3, name="decoder_conv1")
    x = conv_bn_relu(x, scaled(256, width), 3, name="decoder_conv2")
    x = layers.Conv2D(num_classes, 1, name="decoder_classifier")(x)
    return keras.Model(
        image, logits_at_input_size(x, input_size), name="deeplabv3plus_efficientnetb0"
    )
