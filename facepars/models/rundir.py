"""The run directory: what facepars.train writes and everything after training reads.

    model_dir/
      config.json    what the run is: model, width, class table, input size and
                     resize mode, precision, strategy, the whole config
      best.keras     the network at the best validation face-class mIoU (with its
                     EMA weights when the run keeps them)
      last.keras     the network after the last finished epoch
      best.json      the epoch and validation scores of best.keras
      history.csv    one row per finished epoch
      backup/        what a killed run resumes from
      tensorboard/   the run's TensorBoard events

As ``schema`` owns the data directory, this module owns the run directory: its
names are spelled here only, and "a model path" (a run directory, or a ``.keras``
file with the run's config.json beside it) is resolved here only.
"""

from __future__ import annotations

import os

import tensorflow as tf

from facepars.core import files
from facepars.core.classes import ClassTable

CONFIG = "config.json"
BEST = "best.keras"
LAST = "last.keras"
BEST_SCORES = "best.json"
HISTORY = "history.csv"
BACKUP = "backup"
TENSORBOARD = "tensorboard"

# Beside every exported model: the class table and the input geometry it expects.
CLASS_TABLE = "class_table.json"
SERVING_KEYS = ("class_table", "image_size", "resize", "model", "framing")


def path(model_dir: str, name: str) -> str:
    return files.join(model_dir, name)


def read_info(model_dir: str) -> dict:
    """The config.json that facepars.train wrote beside the checkpoints."""
    config = path(model_dir, CONFIG)
    if not tf.io.gfile.exists(config):
        raise FileNotFoundError(f"{config}: missing; a .keras model needs the config.json "
                                "facepars.train writes beside it (class table, input size, resize)")
    return files.read_json(config)


def resolve(model: str) -> tuple[str, dict]:
    """A run directory (its best.keras) or a .keras file -> (.keras path, run info)."""
    keras_path = path(model, BEST) if tf.io.gfile.isdir(model) else model
    if not tf.io.gfile.exists(keras_path):
        raise FileNotFoundError(f"{keras_path}: no such model (give a training --model_dir, "
                                "a .keras file or an exported SavedModel directory)")
    return keras_path, read_info(os.path.dirname(keras_path))


def load(model: str):
    """(float32 Keras network, run info) for a model path; see ``resolve``."""
    from facepars.models import load_model
    keras_path, info = resolve(model)
    return load_model(keras_path), info


def serving_info(info: dict) -> dict:
    """What an exported model carries about itself (class_table.json)."""
    return {k: info.get(k) for k in SERVING_KEYS}  # framing: None if unmeasured


def class_table(info: dict) -> ClassTable:
    return ClassTable.from_json(info["class_table"])
