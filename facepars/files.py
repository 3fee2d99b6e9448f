"""Writing files safely on local disks and object stores alike (through tf.io.gfile).

Every file facepars writes for another process to read (shards, manifests, run
records, checkpoints) is written under a temporary name and renamed into place,
so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath

import tensorflow as tf


def join(directory: str, name: str) -> str:
    """Join for local paths and URLs alike (os.path.join would break gs://)."""
    if "://" in directory:
        return posixpath.join(directory, name)
    return os.path.join(directory, name)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write bytes under a temporary name and rename, so readers never see half a file."""
    with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
        f.write(data)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def write_json_atomic(path: str, data: dict) -> None:
    """Write JSON under a temporary name and rename, so readers never see half a file."""
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        json.dump(data, f, indent=1)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def read_json(path: str) -> dict:
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
