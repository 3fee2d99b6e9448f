"""The notebook's PSPNet-ResNet50 at 256x256 (its best model: val F1 0.912, IoU 0.850)."""

from facepars.configs.common import base_config


def get_config():
    c = base_config()
    c.model = "pspnet_resnet50"
    c.weights = "imagenet"
    return c
