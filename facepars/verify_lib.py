"""Verifying a prepared data set, ``run``: the work of ``python -m facepars.verify``.

The command line is facepars.verify, which imports this module, and with it
TensorFlow, only once its flags are checked.
"""

from __future__ import annotations

import tensorflow as tf

from facepars.core import files
from facepars.data import contents
from facepars.data.integrity import verify, write_stamp


def run(data_dir: str, output_dir: str | None = None) -> dict:
    """Verify ``data_dir`` and draw its class distribution into ``output_dir`` (default:
    the data directory). Returns the ``manifest``, the ``problems`` (empty when sound),
    the ``chart``'s path and, when sound, the ``stamp`` train trusts (else None)."""
    manifest, problems = verify(data_dir)
    output_dir = output_dir or data_dir
    tf.io.gfile.makedirs(output_dir)
    chart = files.join(output_dir, "class_distribution.png")
    contents.distribution_chart(manifest.data, chart)
    stamp = None if problems else write_stamp(manifest)
    return {"manifest": manifest, "problems": problems, "chart": chart, "stamp": stamp}
