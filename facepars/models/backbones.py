"""Feature extractors cut where the notebook cut them, with a width setting.

Each function takes the [0, 1] image tensor, applies the ImageNet normalisation
its weights were trained with, and returns named feature tensors. The layers
carry the Keras applications' names, so ImageNet weights (or a weights file for
the Keras application) are copied in by name from the public model; widths other
than 1.0 build the same architecture narrower, for tests and demos.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from facepars.core.errors import ConfigError

# Keras's private builders (why: facepars.core.internals); tests/models/test_models.py
# loads the public applications' weights by layer name into what they build.
from facepars.core.internals import efficientnet, resnet

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def _check_weights(weights, width: float, name: str) -> None:
    if weights is not None and width != 1.0:
        raise ConfigError(f"{name}: pretrained weights need width=1.0, got width={width}")


def _load_public(constructor, weights, input_size: int, name: str, **kwargs) -> keras.Model:
    """The Keras application with its weights; says plainly when a download fails."""
    try:
        return constructor(include_top=False, weights=weights,
                           input_shape=(input_size, input_size, 3), **kwargs)
    except Exception as e:  # get_file raises plain Exception on network failure
        if weights == "imagenet":
            raise ConfigError(
                f"{name}: could not download ImageNet weights ({e}). Without internet "
                "access use weights=None (random initialisation) or the path of a "
                "weights file for keras.applications.") from e
        raise


def transfer_weights(source: keras.Model, target: keras.Model, skip=()) -> int:
    """Copy weights layer by layer, matched by name; every weighted target layer that the
    source has must match in shape. Returns the number of layers copied."""
    copied = 0
    source_layers = {l.name: l for l in source.layers}
    for layer in target.layers:
        src = source_layers.get(layer.name)
        if src is None or not layer.weights or layer.name in skip:
            continue
        values = src.get_weights()
        if [v.shape for v in values] != [w.shape for w in layer.weights]:
            raise ValueError(f"layer {layer.name}: shapes {[v.shape for v in values]} vs "
                             f"{[tuple(w.shape) for w in layer.weights]}")
        layer.set_weights(values)
        copied += 1
    if not copied:
        raise ValueError(f"no layer of {source.name} matches {target.name} by name")
    return copied


def resnet50(image, width: float = 1.0, weights=None, input_size: int = 256) -> dict:
    """ResNet50 up to ``conv3_block4_add`` (output stride 8), as the notebook's PSPNet cut it."""
    _check_weights(weights, width, "resnet50")
    # Caffe-style ImageNet input: 0..255 minus the mean. The RGB->BGR swap the
    # weights expect is folded into the first convolution when they are loaded.
    x = layers.Rescaling(255.0, offset=(-255.0 * IMAGENET_MEAN).tolist(), name="resnet_preprocess")(
        image
    )

    def stack_fn(x):
        x = resnet.stack_residual_blocks_v1(x, int(64 * width), 3, stride1=1, name="conv2")
        return resnet.stack_residual_blocks_v1(x, int(128 * width), 4, name="conv3")

    net = resnet.ResNet(stack_fn, preact=False, use_bias=True, include_top=False, weights=None,
                        input_tensor=x, name="resnet50")
    features = {"stride4": net.get_layer("conv2_block3_out").output,
                "stride8": net.get_layer("conv3_block4_add").output}
    if weights is not None:
        public = _load_public(keras.applications.ResNet50, weights, input_size, "resnet50")
        kernel, bias = public.get_layer("conv1_conv").get_weights()
        public.get_layer("conv1_conv").set_weights([kernel[:, :, ::-1, :], bias])  # BGR -> RGB
        transfer_weights(public, net)
    return features


def efficientnetb0(image, width: float = 1.0, weights=None, input_size: int = 256) -> dict:
    """EfficientNetB0; the notebook's DeepLabV3+ takes ``block6a_expand_bn`` (stride 16)
    and ``block3a_expand_bn`` (stride 4). Below width 1 the depth shrinks too."""
    _check_weights(weights, width, "efficientnetb0")
    # The Keras model rescales by 1/255 and then applies an (identity, un-adapted)
    # Normalization layer; feeding it 255 * (x - mean) / std makes that the ImageNet
    # normalisation its weights expect.
    x = layers.Rescaling((255.0 / IMAGENET_STD).tolist(),
                         offset=(-255.0 * IMAGENET_MEAN / IMAGENET_STD).tolist(),
                         name="efficientnet_preprocess")(image)
    net = efficientnet.EfficientNet(width, min(1.0, width), 224, name="efficientnetb0",
                                    include_top=False, weights=None, input_tensor=x)
    features = {"stride4": net.get_layer("block3a_expand_bn").output,
                "stride16": net.get_layer("block6a_expand_bn").output}
    if weights is not None:
        public = _load_public(keras.applications.EfficientNetB0, weights, input_size,
                              "efficientnetb0")
        transfer_weights(public, net, skip={l.name for l in public.layers
                                            if isinstance(l, layers.Normalization)})
    return features


def mobilenetv3large(image, width: float = 1.0, weights=None, input_size: int = 256) -> dict:
    """MobileNetV3-Large features at stride 8 (block 5) and 16 (block 11) for LR-ASPP."""
    if weights is not None and width not in (0.75, 1.0):
        raise ConfigError(
            f"mobilenetv3large: pretrained weights need width 0.75 or 1.0, got {width}"
        )
    x = layers.Rescaling(255.0, name="mobilenet_preprocess")(image)  # the model expects 0..255
    net = keras.applications.MobileNetV3Large(input_tensor=x, alpha=width, include_top=False,
                                              weights=None, include_preprocessing=True)
    features = {"stride8": net.get_layer("expanded_conv_5_add").output,
                "stride16": net.get_layer("expanded_conv_11_add").output}
    if weights is not None:
        public = _load_public(keras.applications.MobileNetV3Large, weights, input_size,
                              "mobilenetv3large", alpha=width)
        transfer_weights(public, net)
    return features
