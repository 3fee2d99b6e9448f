"""Defaults shared by every experiment: the notebook's recipe (docs/training.md).

A training config is one tree of dataclasses: ``TrainConfig`` and its sections,
each defined beside the stage that reads it (``AugmentConfig`` in
facepars.data.augment, ``LossConfig`` in facepars.training.losses, the optimizer's
and schedule's in facepars.training.optimization). An experiment file edits
``base_config()``; ``--config.<field>=value`` overrides any field on the command
line, typed by the field.
"""

# No `from __future__ import annotations` here: --config.<field> overrides read
# these dataclass field types at run time (ml_collections.config_flags).

import dataclasses

from facepars.data.augment import AugmentConfig
from facepars.training.losses import LossConfig
from facepars.training.optimization import OptimizerConfig, ScheduleConfig


@dataclasses.dataclass
class InputSettings:
    """The ``input`` section: how the records are read (facepars.data.pipeline)."""

    shuffle_buffer: int = 1024    # the training order is a function of (seed, step)
    cache: bool = False           # keep the decoded validation records in memory
    take: int = 0                 # > 0: train on only this many records


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run is, besides its data and where it writes."""

    model: str = "pspnet_resnet50"
    width: float = 1.0            # channel multiplier (tests and demos build narrow models)
    weights: str = ""             # "", "imagenet" or a Keras-application weights file
    bn_momentum: float = 0.99     # BatchNormalization moving-average momentum
    sync_batchnorm: bool = True   # batch statistics over the global batch
    batch_size: int = 32          # global batch, split over the replicas
    epochs: int = 40
    steps_per_epoch: int = 0      # 0: one pass over the train split
    train_split: str = "train"
    val_split: str = "val"
    seed: int = 0
    op_determinism: bool = False  # TensorFlow op determinism: bit-identical reruns (slower)

    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    early_stopping_patience: int = 10  # epochs without val_loss improvement; 0: off
    freeze_backbone_steps: int = 0     # the backbone holds still for the first N steps (a
                                       # fine-tune's new head settles on it first)
    ema_momentum: float = 0.0          # > 0: evaluate and save EMA weights

    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    input: InputSettings = dataclasses.field(default_factory=InputSettings)

    jit_compile: bool = False
    steps_per_execution: int = 1  # > 1 on TPU: several steps per host round trip
    overlay_images: int = 6       # validation images drawn to TensorBoard each epoch
    backup_every_steps: int = 0   # also back up every N steps (a kill -9 loses < N steps);
                                  # backups are always made at epoch ends and on SIGTERM
    nan_retries: int = 3          # restores after a NaN loss before giving up
    nan_lr_factor: float = 0.5    # learning-rate factor at each restore


def base_config() -> TrainConfig:
    return TrainConfig()
