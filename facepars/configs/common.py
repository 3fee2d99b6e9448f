"""Defaults shared by every experiment: the notebook's recipe (docs/training.md)."""

from __future__ import annotations

import ml_collections

from facepars.data.augment import AugmentConfig


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.model = "pspnet_resnet50"
    c.width = 1.0                 # channel multiplier (tests and demos build narrow models)
    c.weights = ""                # "", "imagenet" or a Keras-application weights file
    c.bn_momentum = 0.99          # BatchNormalization moving-average momentum
    c.sync_batchnorm = True       # batch statistics over the global batch
    c.batch_size = 32             # global batch, split over the replicas
    c.epochs = 40
    c.steps_per_epoch = 0         # 0: one pass over the train split
    c.train_split = "train"
    c.val_split = "val"
    c.seed = 0
    c.op_determinism = False      # TensorFlow op determinism: bit-identical reruns (slower)

    c.optimizer = ml_collections.ConfigDict(dict(
        name="sgd", learning_rate=0.1, momentum=0.0, nesterov=False, weight_decay=0.0))
    # plateau: the notebook's ReduceLROnPlateau(val_loss, patience 4, factor 0.5);
    # poly / cosine: per-step decay over the run, with linear warm-up.
    c.schedule = ml_collections.ConfigDict(dict(
        name="plateau", plateau_patience=4, plateau_factor=0.5, min_learning_rate=1e-5,
        warmup_epochs=0.0, poly_power=0.9, end_learning_rate=0.0))
    c.early_stopping_patience = 10   # epochs without val_loss improvement; 0: off
    c.freeze_backbone_steps = 0      # the backbone holds still for the first N steps (a
                                     # fine-tune's new head settles on it first)
    c.ema_momentum = 0.0             # > 0: evaluate and save EMA weights

    c.loss = ml_collections.ConfigDict(dict(
        cross_entropy=1.0, dice=1.0, jaccard=1.0,
        class_weights=ml_collections.FieldReference(None, field_type=tuple)))
    c.augment = ml_collections.ConfigDict(AugmentConfig().__dict__)
    # The training order is a function of (seed, step) (facepars.data.pipeline);
    # cache keeps the decoded validation records in memory (small val sets).
    c.input = ml_collections.ConfigDict(dict(shuffle_buffer=1024, cache=False, take=0))

    c.jit_compile = False
    c.steps_per_execution = 1       # > 1 on TPU: several steps per host round trip
    c.overlay_images = 6            # validation images drawn to TensorBoard each epoch
    c.backup_every_steps = 0        # also back up every N steps (a kill -9 loses < N steps);
                                    # backups are always made at epoch ends and on SIGTERM
    c.nan_retries = 3               # restores after a NaN loss before giving up
    c.nan_lr_factor = 0.5           # learning-rate factor at each restore
    return c
