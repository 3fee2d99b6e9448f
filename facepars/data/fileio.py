"""Source files at local paths and at URLs (gs://, s3://, hdfs://) alike.

Local paths go through ``os`` and ``open``, URLs through ``tf.io.gfile``, and
TensorFlow is imported only when a URL is met: the local pool's worker
processes stay light, while a Beam worker on Dataflow reads a bucket directly.
"""

from __future__ import annotations

import builtins
import os


def is_url(path: str) -> bool:
    return "://" in path


def _gfile():
    import tensorflow as tf  # only for URLs; see the module docstring
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
