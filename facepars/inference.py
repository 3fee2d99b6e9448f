"""Running a trained face parser on photos of any size.

A photo goes into the network exactly the way ``prepare`` put training photos
in (the same ``Geometry``: stretch, or aspect-preserving pad), and the logits
come back out the inverse way (crop the content box, bilinear resize to the
photo's size) before the argmax. ``Predictor`` loads a model directory, a
``.keras`` file with its ``config.json`` beside it, or an exported SavedModel.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from facepars import schema
from facepars.classes import ClassTable
from facepars.data import images as image_ops

CONFIG = "config.json"
CLASS_TABLE = "class_table.json"


def to_network_input(photo: np.ndarray, size: int, resize: str) -> tuple[np.ndarray, image_ops.Geometry]:
    """uint8 photo (H, W, 3) -> uint8 (size, size, 3) as prepare does it, and its geometry."""
    geo = image_ops.geometry(photo.shape[0], photo.shape[1], size, resize)
    return image_ops.resize_image(photo, geo), geo


def logits_to_photo(logits: tf.Tensor, geo: image_ops.Geometry) -> tf.Tensor:
    """Network-size logits (S, S, C) -> logits at the photo's own (H, W): undo pad or stretch."""
    top, left, h, w = geo.content_box
    content = logits[top:top + h, left:left + w]
    return tf.image.resize(content, (geo.height, geo.width), method="bilinear")


@dataclasses.dataclass
class Prediction:
    labels: np.ndarray                       # uint8 (H, W) class ids
    probabilities: np.ndarray | None = None  # float32 (H, W, C)


class Predictor:
    """``Predictor.load(path).predict(photo)`` -> Prediction at the photo's size."""

    def __init__(self, logits_fn, table: ClassTable, image_size: int, resize: str):
        self.logits_fn, self.table = logits_fn, table
        self.image_size, self.resize = image_size, resize

    @classmethod
    def load(cls, path: str) -> "Predictor":
        if tf.io.gfile.isdir(path) and tf.io.gfile.exists(schema.join(path, "saved_model.pb")):
            return cls._from_saved_model(path)
        if tf.io.gfile.isdir(path):
            path = schema.join(path, "best.keras")
        info = read_run_info(os.path.dirname(path))
        from facepars.models import load_model
        network = load_model(path)
        return cls(lambda x: network(x, training=False), ClassTable.from_json(info["class_table"]),
                   info["image_size"], info["resize"])

    @classmethod
    def _from_saved_model(cls, path: str) -> "Predictor":
        loaded = tf.saved_model.load(path)
        with tf.io.gfile.GFile(schema.join(path, "assets", CLASS_TABLE)) as f:
            info = json.load(f)
        network = loaded.signatures["network"]
        return cls(lambda x: network(images=x)["logits"], ClassTable.from_json(info["class_table"]),
                   info["image_size"], info["resize"])

    def network_logits(self, batch: np.ndarray) -> tf.Tensor:
        """uint8 (B, S, S, 3) network inputs -> float32 logits (B, S, S, C)."""
        return tf.cast(self.logits_fn(tf.cast(batch, tf.float32) / 255.0), tf.float32)

    def predict_batch(self, photos: list[np.ndarray], probabilities: bool = False) -> list[Prediction]:
        prepared = [to_network_input(p, self.image_size, self.resize) for p in photos]
        logits = self.network_logits(np.stack([x for x, _ in prepared]))
        out = []
        for logit, (_, geo) in zip(logits, prepared):
            full = logits_to_photo(logit, geo)
            labels = tf.argmax(full, -1, output_type=tf.int32).numpy().astype(np.uint8)
            probs = tf.nn.softmax(full).numpy() if probabilities else None
            out.append(Prediction(labels, probs))
        return out

    def predict(self, photo: np.ndarray, probabilities: bool = False) -> Prediction:
        return self.predict_batch([photo], probabilities)[0]


def read_run_info(model_dir: str) -> dict:
    """The config.json that facepars.train wrote beside the checkpoints."""
    path = schema.join(model_dir, CONFIG)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: missing; a .keras model needs the config.json "
                                "facepars.train writes beside it (class table, input size, resize)")
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
