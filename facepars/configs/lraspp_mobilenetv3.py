"""The mobile model: LR-ASPP on MobileNetV3-Large, cosine schedule, bf16-ready."""

from facepars.configs.common import base_config


def get_config():
    c = base_config()
    c.model = "lraspp_mobilenetv3"
    c.weights = "imagenet"
    c.batch_size = 64
    c.epochs = 60
    c.optimizer.learning_rate = 0.05
    c.optimizer.momentum = 0.9
    c.optimizer.weight_decay = 1e-4
    c.schedule.name = "cosine"
    c.schedule.warmup_epochs = 2.0
    c.early_stopping_patience = 0
    c.ema_momentum = 0.999
    return c
