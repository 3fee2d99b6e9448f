"""The run directory: what facepars.train writes and everything after training reads.

    model_dir/
      config.json    what the run is: its ModelCard (model, width, class table,
                     input size, resize mode, framing), precision, strategy, the
                     whole config
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

import dataclasses
import os
from typing import Mapping

import numpy as np
import tensorflow as tf

from facepars.core import files
from facepars.core.classes import ClassTable
from facepars.core.errors import ConfigError

CONFIG = "config.json"
BEST = "best.keras"
LAST = "last.keras"
BEST_SCORES = "best.json"
HISTORY = "history.csv"
BACKUP = "backup"
TENSORBOARD = "tensorboard"

# Beside every exported model: its ModelCard.
CLASS_TABLE = "class_table.json"


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What a trained network promises whoever runs it: its classes, the input it
    takes and how photos are fitted to it, what it is, and where its training crops
    put the five face points. train writes it into config.json (beside the run's
    other settings), export into class_table.json; everything after training reads
    it through here. Files written before ``model``, ``width`` or ``framing`` were
    recorded still read (as None)."""

    table: ClassTable
    image_size: int          # the network's square input, in pixels
    resize: str              # how a photo is fitted to it (facepars.inference.serving)
    model: str | None = None
    width: float | None = None
    framing: dict | None = None  # facepars.data.framing's record; None: unmeasured

    @property
    def points(self) -> np.ndarray | None:
        """The five face points (5, 2) in network pixels, if the framing is known."""
        return None if self.framing is None else np.asarray(self.framing["points"], np.float64)

    @classmethod
    def from_json(cls, info: Mapping, source: str) -> "ModelCard":
        """From config.json or class_table.json (``source`` names it in errors)."""
        missing = [k for k in ("class_table", "image_size", "resize") if k not in info]
        if missing:
            raise ConfigError(f"{source}: no {', '.join(missing)}; not a facepars run's "
                              "config.json or an export's class_table.json")
        return cls(ClassTable.from_json(info["class_table"]), int(info["image_size"]),
                   info["resize"], info.get("model"), info.get("width"), info.get("framing"))

    def to_json(self) -> dict:
        return {"class_table": self.table.to_json(), "image_size": self.image_size,
                "resize": self.resize, "model": self.model, "width": self.width,
                "framing": self.framing}

    @classmethod
    def read(cls, path: str) -> "ModelCard":
        return cls.from_json(files.read_json(path), path)


def path(model_dir: str, name: str) -> str:
    return files.join(model_dir, name)


def read_card(model_dir: str) -> ModelCard:
    """The ModelCard in the config.json facepars.train wrote beside the checkpoints."""
    config = path(model_dir, CONFIG)
    if not tf.io.gfile.exists(config):
        raise FileNotFoundError(f"{config}: missing; a .keras model needs the config.json "
                                "facepars.train writes beside it (class table, input size, resize)")
    return ModelCard.read(config)


def resolve(model: str) -> tuple[str, ModelCard]:
    """A run directory (its best.keras) or a .keras file -> (.keras path, its card)."""
    keras_path = path(model, BEST) if tf.io.gfile.isdir(model) else model
    if not tf.io.gfile.exists(keras_path):
        raise FileNotFoundError(f"{keras_path}: no such model (give a training --model_dir, "
                                "a .keras file or an exported SavedModel directory)")
    return keras_path, read_card(os.path.dirname(keras_path))


def load(model: str):
    """(float32 Keras network, ModelCard) for a model path; see ``resolve``. The card
    is the one source of the input size: a network that takes another is refused."""
    from facepars.models import load_model
    keras_path, card = resolve(model)
    network = load_model(keras_path)
    if tuple(network.input_shape[1:3]) != (card.image_size, card.image_size):
        raise ConfigError(f"{keras_path}: the network takes {network.input_shape[1:3]} inputs, "
                          f"its run's {CONFIG} says {card.image_size}x{card.image_size}; "
                          "the two files are from different runs")
    return network, card
