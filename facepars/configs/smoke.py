"""Tiny and fast: the demo and the tests train this on the synthetic faces on a CPU."""

from facepars.configs.common import base_config


def get_config():
    c = base_config()
    c.model = "lraspp_mobilenetv3"
    c.width = 0.5
    c.bn_momentum = 0.9           # few steps from scratch: fast-moving BN statistics
    c.batch_size = 16
    c.epochs = 6
    c.steps_per_epoch = 40
    c.optimizer.learning_rate = 0.05
    c.optimizer.momentum = 0.9
    c.schedule.name = "cosine"
    c.schedule.warmup_epochs = 0.5
    c.early_stopping_patience = 0
    c.overlay_images = 4
    return c
