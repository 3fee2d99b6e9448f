"""The model registry: one explicit name -> family module table, and your own families.

Every family module has a constructor
``build(num_classes, input_size=256, weights=None, width=1.0) -> keras.Model``
returning a model from [0, 1] RGB images to float32 logits at the input size, and
names its parts: ``BACKBONE_OUTPUTS`` (the backbone layers the decoder reads) and
``CLASSIFIERS`` (the convolutions with one output channel per class). ``modules``
splits any built or loaded network of the family into backbone, decoder and
classifier layers by them: what fine-tuning copies and freezes.

A config's ``model`` is a registered name or the import path of a module of your
own that keeps this contract (``--config.model=my_package.my_family``): facepars
trains, fine-tunes, evaluates, exports and serves it as its own families, provided
the network is made of Keras's built-in layers (run files load with safe_mode on).
"""

from __future__ import annotations

import importlib
import types

import keras
import tensorflow as tf

from facepars.core.errors import ConfigError
from facepars.models import deeplabv3plus, lraspp, pspnet

FAMILIES = {
    "pspnet_resnet50": pspnet,
    "deeplabv3plus_efficientnetb0": deeplabv3plus,
    "lraspp_mobilenetv3": lraspp,
}
MODELS = {name: family.build for name, family in FAMILIES.items()}
MODULES = ("backbone", "decoder", "classifier")
CONTRACT = ("build", "BACKBONE_OUTPUTS", "CLASSIFIERS")  # what a family module defines


def family(name: str) -> types.ModuleType:
    """The family module ``name`` stands for: registered, or imported by its path."""
    if name in FAMILIES:
        return FAMILIES[name]
    if "." not in name:
        raise ConfigError(f"unknown model {name!r}; registered: {', '.join(MODELS)}, or "
                          "the import path of your own family module (package.module)")
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        raise ConfigError(f"model {name!r}: cannot import it ({e})") from e
    missing = [attribute for attribute in CONTRACT if not hasattr(module, attribute)]
    if missing:
        raise ConfigError(f"model {name!r}: {module.__file__} defines no "
                          f"{', '.join(missing)} (a family module defines {', '.join(CONTRACT)}:"
                          " docs/training.md, \"A family of your own\")")
    return module


def modules(network: keras.Model, name: str) -> dict[str, list[keras.layers.Layer]]:
    """The network's weighted layers as backbone, decoder and classifier: the backbone
    is every layer its ``BACKBONE_OUTPUTS`` depend on, the classifier its
    ``CLASSIFIERS``, the decoder the rest."""
    parts = family(name)
    trunk = keras.Model(network.inputs, [network.get_layer(n).output
                                         for n in parts.BACKBONE_OUTPUTS])
    backbone = {layer.name for layer in trunk.layers}
    out = {m: [] for m in MODULES}
    for layer in network.layers:
        if not layer.weights:
            continue
        module = ("classifier" if layer.name in parts.CLASSIFIERS else
                  "backbone" if layer.name in backbone else "decoder")
        out[module].append(layer)
    return out


def to_model_input(images) -> tf.Tensor:
    """uint8 pixels -> the [0, 1] float32 every facepars model takes (the notebook's scaling).

    The one place this scaling is written: training, evaluation, serving
    graphs, TFLite calibration and ONNX parity all call it.
    """
    return tf.cast(images, tf.float32) / 255.0


def build_model(name: str, num_classes: int, input_size: int = 256, weights=None,
                width: float = 1.0) -> keras.Model:
    return family(name).build(num_classes, input_size=input_size, weights=weights, width=width)


def configure_batchnorm(model: keras.Model, momentum: float, synchronized: bool) -> None:
    """Set every BatchNormalization's momentum and cross-replica synchronisation.

    Synchronised: batch statistics over the global batch, not each replica's few
    images (what segmentation needs at small per-replica batches, and what makes
    N replicas train like one device). Momentum: the Keras applications use
    0.99-0.999, tuned for long ImageNet runs; a short run from scratch needs a
    faster average, or inference statistics lag behind the weights (a model that
    trains well and predicts only background).
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            layer.synchronized = synchronized


def load_model(path: str) -> keras.Model:
    """Load a ``.keras`` model with safe_mode on (no arbitrary code runs on load),
    computing in float32 whatever precision it was trained in."""
    return as_float32(keras.saving.load_model(path, safe_mode=True, compile=False))


def as_float32(model: keras.Model) -> keras.Model:
    """The same network with every layer in float32 (``model`` itself if it already is).

    A network trained under mixed_float16 or mixed_bfloat16 keeps each layer's
    policy in its saved config; exported as it is, the TFLite converter fails on
    its casts ("Could not translate MLIR to FlatBuffer") and the host runs slow
    half-precision kernels. The weights themselves are float32 under both mixed
    policies, so they copy over unchanged.
    """
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def in_float32(node):
        """The config with every mixed DTypePolicy replaced by float32."""
        if isinstance(node, list):
            return [in_float32(n) for n in node]
        if not isinstance(node, dict):
            return node
        if node.get("class_name") == "DTypePolicy" and node["config"]["name"].startswith("mixed_"):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {k: in_float32(v) for k, v in node.items()}

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # for layers saved without a policy
    try:
        clone = model.__class__.from_config(in_float32(model.get_config()))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    clone.set_weights(model.get_weights())
    return clone
