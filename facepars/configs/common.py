"""The training config's schema and defaults: the notebook's recipe (docs/training.md).

A training config is one tree of dataclasses, ``TrainConfig`` and its sections,
all defined here so that a config file loads without TensorFlow (the command
line checks its flags and ``--config.<field>`` overrides before TensorFlow
starts); each section's docstring names the stage that reads it. An experiment
file edits ``base_config()``; ``--config.<field>=value`` overrides any field on
the command line, typed by the field.
"""

# No `from __future__ import annotations` here: --config.<field> overrides read
# these dataclass field types at run time (ml_collections.config_flags).

import dataclasses


@dataclasses.dataclass
class OptimizerConfig:
    """The ``optimizer`` section (facepars.training.optimization)."""

    name: str = "sgd"             # sgd or adamw
    learning_rate: float = 0.1
    momentum: float = 0.0         # sgd
    nesterov: bool = False        # sgd
    weight_decay: float = 0.0


@dataclasses.dataclass
class ScheduleConfig:
    """The ``schedule`` section (facepars.training.optimization). plateau: the notebook's
    ReduceLROnPlateau(val_loss, patience 4, factor 0.5); poly and cosine: per-step
    decay over the run, with linear warm-up."""

    name: str = "plateau"         # plateau, poly or cosine
    plateau_patience: int = 4
    plateau_factor: float = 0.5
    min_learning_rate: float = 1e-5
    warmup_epochs: float = 0.0
    poly_power: float = 0.9
    end_learning_rate: float = 0.0


@dataclasses.dataclass
class LossConfig:
    """The ``loss`` section (facepars.training.losses): each term's weight
    (docs/training.md) and, optionally, one weight per class in the per-class sums."""

    cross_entropy: float = 1.0
    dice: float = 1.0
    jaccard: float = 1.0
    class_weights: tuple | None = None  # None: every class 1


@dataclasses.dataclass
class AugmentConfig:
    """The ``augment`` section (facepars.data.augment): strengths; 0 turns a
    transform off."""

    flip: float = 0.5          # probability of a horizontal flip
    scale: float = 0.2         # zoom in [1 - scale, 1 + scale]
    rotate: float = 15.0       # degrees, in [-rotate, rotate]
    translate: float = 0.08    # fraction of the side, in [-translate, translate]
    brightness: float = 0.15   # added, in [-b, b]
    contrast: float = 0.2      # factor in [1 - c, 1 + c]
    saturation: float = 0.2    # chroma factor in [1 - s, 1 + s]
    hue: float = 0.03          # turn of the chroma plane, in [-h, h] of a full turn
    blur: float = 0.1          # probability of a 3x3 Gaussian blur
    noise: float = 0.02        # largest std of the added zero-mean noise


NO_AUGMENTATION = AugmentConfig(**{f.name: 0.0 for f in dataclasses.fields(AugmentConfig)})


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
