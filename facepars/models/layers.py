"""Building blocks shared by the model families (Keras built-in layers only,
so saved models load with safe_mode=True)."""

from __future__ import annotations

import keras
from keras import layers


def conv_bn_relu(x, filters: int, kernel: int = 1, dilation: int = 1, name: str = ""):
    x = layers.Conv2D(filters, kernel, padding="same", dilation_rate=dilation, use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def resize_to(x, height: int, width: int, name: str):
    """Bilinear resize to a static size (works for any integer or fractional factor).

    Always computed in float32: under mixed_bfloat16, XLA's lowering of the
    bilinear resize gradient hands back float32 where the graph says bfloat16
    (``Seen floating point types of different precisions ... ResizeBilinearGrad``),
    so a bfloat16 resize fails to compile. Layers after it cast back to their
    compute dtype, as Keras does for every layer input.
    """
    return layers.Resizing(height, width, interpolation="bilinear", dtype="float32", name=name)(x)


def logits_at_input_size(x, input_size: int, name: str = "logits"):
    """Upsample class scores to the input and hand them out in float32.

    The final cast layer keeps the loss and argmax in float32 under any
    mixed-precision policy.
    """
    x = resize_to(x, input_size, input_size, f"{name}_upsample")
    return layers.Activation("linear", dtype="float32", name=name)(x)


def scaled(filters: int, width: float, minimum: int = 8) -> int:
    """Channel count scaled by ``width``, kept a multiple of 8 (hardware friendly)."""
    return max(minimum, int(round(filters * width / 8)) * 8)


def image_input(input_size: int) -> keras.KerasTensor:
    """Every model takes RGB in [0, 1] (the notebook's scaling), float, static size."""
    return keras.Input((input_size, input_size, 3), name="image")
