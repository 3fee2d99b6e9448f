"""The on-disk contract between ``prepare`` and everything that reads its output.

Shards hold one ``tf.train.Example`` per image with the TF Model Garden's
segmentation keys, so they also load in its decoder. ``manifest.json`` beside
them says what they hold; readers open shards through it, never by globbing.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import numpy as np
import tensorflow as tf

from facepars.core import files
from facepars.core.classes import ClassTable
from facepars.core.errors import FaceparsError

IMAGE_ENCODED = "image/encoded"
IMAGE_FORMAT = "image/format"
IMAGE_HEIGHT = "image/height"
IMAGE_WIDTH = "image/width"
SOURCE_ID = "image/source_id"
MASK_ENCODED = "image/segmentation/class/encoded"
MASK_FORMAT = "image/segmentation/class/format"

MANIFEST = "manifest.json"
# What facepars.verify leaves when every shard checked out (facepars.data.integrity).
VERIFIED = "verified.json"
FORMAT_VERSION = 2


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def make_example(source_id: str, image: bytes, image_format: str, mask: bytes,
                 height: int, width: int) -> bytes:
    """Serialise one converted pair."""
    def b(v): return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
    def i(v): return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
    return tf.train.Example(features=tf.train.Features(feature={
        IMAGE_ENCODED: b(image),
        IMAGE_FORMAT: b(image_format.encode()),
        IMAGE_HEIGHT: i(height),
        IMAGE_WIDTH: i(width),
        SOURCE_ID: b(source_id.encode()),
        MASK_ENCODED: b(mask),
        MASK_FORMAT: b(b"png"),
    })).SerializeToString(deterministic=True)  # map order must not vary by run


_FEATURES = {
    IMAGE_ENCODED: tf.io.FixedLenFeature((), tf.string),
    IMAGE_HEIGHT: tf.io.FixedLenFeature((), tf.int64),
    IMAGE_WIDTH: tf.io.FixedLenFeature((), tf.int64),
    SOURCE_ID: tf.io.FixedLenFeature((), tf.string, default_value=""),
    MASK_ENCODED: tf.io.FixedLenFeature((), tf.string),
}


def parse_example(serialized: tf.Tensor, image_size: int) -> dict[str, tf.Tensor]:
    """Decode one record to uint8 ``image`` (S,S,3), uint8 ``mask`` (S,S), ``source_id``.

    The shapes are made static here so batches are TPU-friendly; a record whose
    size disagrees fails the ensure_shape check rather than corrupting a batch.
    """
    f = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(f[IMAGE_ENCODED], channels=3, expand_animations=False)
    mask = tf.io.decode_png(f[MASK_ENCODED], channels=1)[..., 0]
    return {
        "image": tf.ensure_shape(image, (image_size, image_size, 3)),
        "mask": tf.ensure_shape(mask, (image_size, image_size)),
        "source_id": f[SOURCE_ID],
    }


class ManifestError(FaceparsError, ValueError):
    """A manifest that is missing, unreadable or of another format version."""


@dataclasses.dataclass(frozen=True)
class Shard:
    path: str
    num_records: int
    sha256: str
    bytes: int = -1  # the file's size (-1: unknown, in hand-made test shards)


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A prepared data directory, as its manifest describes it."""

    data_dir: str
    data: dict

    @classmethod
    def load(cls, data_dir: str) -> "Manifest":
        path = files.join(data_dir, MANIFEST)
        if not tf.io.gfile.exists(path):
            raise ManifestError(
                f"{path}: no manifest; is {data_dir} the output of facepars.prepare?")
        try:
            with tf.io.gfile.GFile(path) as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON ({e})") from e
        if data.get("format_version") != FORMAT_VERSION:
            raise ManifestError(f"{path}: manifest format {data.get('format_version')}, "
                                f"this facepars reads {FORMAT_VERSION}; prepare the data "
                                "again with this facepars (--overwrite)")
        return cls(data_dir, data)

    @property
    def class_table(self) -> ClassTable:
        return ClassTable.from_json(self.data["class_table"])

    @property
    def image_size(self) -> int:
        return int(self.data["image_size"])

    @property
    def resize(self) -> str:
        return self.data["resize"]

    @property
    def input_dir(self) -> str | None:
        """The raw data the set was prepared from (None for synthetic faces)."""
        return self.data["input_dir"]

    @property
    def source_listing(self) -> dict:
        """Keyword arguments of facepars.data.sources.list_source (besides input_dir)
        that list the source again as prepare listed it."""
        return dict(self.data["source_listing"])

    @property
    def source_lookup(self) -> np.ndarray:
        """uint8 (256,): the source's raw mask id -> this data set's class id."""
        return np.asarray(self.data["source_lookup"], np.uint8)

    @property
    def framing(self) -> dict | None:
        """Where faces sit in the training crops (facepars.data.framing); None if unmeasured."""
        return self.data.get("framing")

    @property
    def splits(self) -> list[str]:
        return list(self.data["splits"])

    def split(self, name: str) -> dict:
        if name not in self.data["splits"]:
            raise ManifestError(f"{files.join(self.data_dir, MANIFEST)}: no split {name!r} "
                           f"(has {', '.join(self.splits)})")
        return self.data["splits"][name]

    def shards(self, split: str) -> list[Shard]:
        return [Shard(files.join(self.data_dir, s["file"]), s["num_records"], s["sha256"],
                      s["bytes"])
                for s in self.split(split)["shards"]]

    def num_records(self, split: str) -> int:
        return int(self.split(split)["num_records"])

    def iter_all_shards(self) -> Iterator[tuple[str, Shard]]:
        for split in self.splits:
            for shard in self.shards(split):
                yield split, shard
