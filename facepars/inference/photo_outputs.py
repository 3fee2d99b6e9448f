"""What predict writes for a parsed photo, locally and on Beam workers alike.

Under the output directory, with the photo's output name: NAME.labels.png
(palette PNG of class ids), NAME.overlay.jpg, NAME.probs.npz (with
probabilities); and the photo's summary.json entry. One writer for both runners
(facepars.predict, facepars.inference.beam_corpus), so their outputs are the same bytes.
"""

from __future__ import annotations

import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from facepars.core import files, imaging, visualize

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def write_outputs(output_dir: str, name: str, photo: np.ndarray, prediction, table) -> dict:
    """One photo's label PNG, overlay and probabilities, on a local disk or a bucket."""
    stem = files.join(output_dir, os.path.splitext(name)[0])
    tf.io.gfile.makedirs(os.path.dirname(stem) or ".")
    files.write_bytes_atomic(stem + ".labels.png",
                             imaging.encode_mask(prediction.labels, table.palette()))
    picture = visualize.overlay(photo, prediction.labels, table)
    if prediction.faces:
        picture = visualize.draw_boxes(picture, [f.box for f in prediction.faces])
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=90)
    files.write_bytes_atomic(stem + ".overlay.jpg", buffer.getvalue())
    if prediction.probabilities is not None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, probabilities=prediction.probabilities.astype(np.float16),
                            classes=np.array(table.names))
        files.write_bytes_atomic(stem + ".probs.npz", buffer.getvalue())
    counts = np.bincount(prediction.labels.ravel(), minlength=table.num_classes)
    record = {"classes": {n: float(c) / prediction.labels.size
                          for n, c in zip(table.names, counts)}}
    if prediction.faces is not None:
        record["faces"] = [f.to_json() for f in prediction.faces]
    return record


SUMMARY = "summary.json"  # beside the outputs of a predict run, local or on Beam


def write_summary(output_dir: str, model: str, faces: str, photos: dict,
                  failures: list) -> None:
    """A predict run's summary.json: the model, how faces were found, each photo's
    entry (``write_outputs``' return) and the inputs that failed."""
    files.write_json_atomic(files.join(output_dir, SUMMARY), {
        "model": model, "faces": faces, "photos": photos, "failures": failures})
