"""Five-point face alignment: put a face where the training crops put faces, and back.

Five points, in this order everywhere in facepars: left eye centre, right eye
centre, nose tip, left mouth corner, right mouth corner ("left" is the image's
left). A similarity transform (rotation, uniform scale, translation: four
degrees of freedom) fitted by least squares maps a face's five points onto the
*framing* of the model's training data, five points in network-input pixels
that the manifest records (facepars.data.framing measures it from the masks).

Coordinates are pixels with pixel centres at whole numbers. The crops
themselves are cut by facepars.core.imaging.warp, for training (prepare) and for
prediction alike; the way back, probabilities onto the photo, is
facepars.inference.predictor's.
"""

from __future__ import annotations

import numpy as np

POINTS = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")

# FaRL's five-point template on a 512 x 512 canvas: faces a little above centre,
# with room for hair and ears (what `prepare --align=landmarks` aligns to).
TEMPLATE_512 = np.array([[196.0, 226.0], [316.0, 226.0], [256.0, 286.0],
                         [220.0, 360.4], [292.0, 360.4]])


def rescale(points, scale) -> np.ndarray:
    """(N, 2) points of an image resized by ``scale`` (a number, or (x, y) factors).

    Pixel centres sit at whole numbers, so pixel edges (at -0.5) scale, not centres.
    """
    return (np.asarray(points, np.float64) + 0.5) * scale - 0.5


def template(size: int) -> np.ndarray:
    """The five-point template scaled to a size x size crop."""
    return rescale(TEMPLATE_512, size / 512)


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity matrix M minimising sum |M [s; 1] - t|^2 (Umeyama, no reflection).

    ``source`` and ``target`` are (N, 2) arrays of (x, y) points, N >= 2.
    """
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mean_s, mean_t = source.mean(0), target.mean(0)
    s, t = source - mean_s, target - mean_t
    covariance = t.T @ s / len(s)
    u, d, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(d) @ sign) / max((s ** 2).sum() / len(s), 1e-12)
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_t - scale * rotation @ mean_s
    return matrix
