"""Files at local paths and at URLs (gs://, s3://, hdfs://) alike, written safely.

Reading: local paths go through ``os`` and ``open``, URLs through
``tf.io.gfile``. Writing: every file facepars writes for another process to read
(shards, manifests, run records, checkpoints) goes through ``tf.io.gfile`` under
a temporary name and is renamed into place, so a reader never sees half of one.

TensorFlow is imported on first use, not with this module: prepare's worker
processes read local source files through it and stay light (no TensorFlow),
while a Beam worker on Dataflow reads a bucket directly.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
import os
import posixpath


def is_url(path: str) -> bool:
    return "://" in path


def join(directory: str, *names: str) -> str:
    """Join for local paths and URLs alike (os.path.join would break gs:// on Windows)."""
    if is_url(directory):
        return posixpath.join(directory, *names)
    return os.path.join(directory, *names)


@functools.cache
def _gfile():
    import tensorflow as tf  # on first use; see the module docstring
    return tf.io.gfile


def listdir(path: str) -> list[str]:
    if is_url(path):
        return [name.rstrip("/") for name in _gfile().listdir(path)]
    return os.listdir(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_url(path) else os.path.isdir(path)


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_url(path) else os.path.exists(path)


def open(path: str, mode: str = "r"):  # noqa: A001 - the builtin's name, for URLs too
    """``open`` for local paths; raises FileNotFoundError for a missing URL as well."""
    if not is_url(path):
        return builtins.open(path, mode)
    if not _gfile().exists(path):
        raise FileNotFoundError(path)
    return _gfile().GFile(path, mode)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with _gfile().GFile(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Write bytes under a temporary name and rename, so readers never see half a file."""
    with _gfile().GFile(path + ".tmp", "wb") as f:
        f.write(data)
    _gfile().rename(path + ".tmp", path, overwrite=True)


def write_json_atomic(path: str, data: dict) -> None:
    """Write JSON under a temporary name and rename, so readers never see half a file."""
    with _gfile().GFile(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    _gfile().rename(path + ".tmp", path, overwrite=True)


def read_json(path: str) -> dict:
    with _gfile().GFile(path) as f:
        return json.load(f)


def list_entries(lines) -> list[str]:
    """A list file's entries: one per line, blank lines and ``#`` comments skipped."""
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def list_file(item: str) -> str | None:
    """The list file an ``@LIST`` input names (None for other inputs); refuses a
    missing one, so a typo is not a silently empty run."""
    if not item.startswith("@"):
        return None
    if not exists(item[1:]):
        raise FileNotFoundError(f"{item}: no such list file (@LIST names a text file of "
                                "inputs, one per line)")
    return item[1:]
