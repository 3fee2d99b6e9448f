"""Five-point face alignment: put a face where the training crops put faces, and back.

Five points, in this order everywhere in facepars: left eye centre, right eye
centre, nose tip, left mouth corner, right mouth corner ("left" is the image's
left). A similarity transform (rotation, uniform scale, translation: four
degrees of freedom) fitted by least squares maps a face's five points onto the
*framing* of the model's training data, five points in network-input pixels
that the manifest records (facepars.data.framing measures it from the masks).

Coordinates are pixels with pixel centres at whole numbers. Warping at
prediction time uses TensorFlow's projective-transform kernel on the host
(bilinear for pixels and probabilities, never nearest on labels), around the
network, never inside a training step; TensorFlow is imported only there, so
prepare's conversion workers, which align training crops with Pillow
(facepars.data.images.warp), can use the rest of this module.
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


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through a 2x3 matrix."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def _sample(values, output_to_input: np.ndarray, height: int, width: int):
    """values (B, h, w, C) float sampled at output_to_input(output pixel), bilinear, 0 outside."""
    import tensorflow as tf  # see the module docstring

    m = output_to_input
    transform = tf.constant([[m[0, 0], m[0, 1], m[0, 2], m[1, 0], m[1, 1], m[1, 2], 0.0, 0.0]],
                            tf.float32)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=values, transforms=tf.repeat(transform, tf.shape(values)[0], 0),
        output_shape=tf.constant([height, width], tf.int32), fill_value=tf.constant(0.0),
        interpolation="BILINEAR", fill_mode="CONSTANT")


def footprint(matrix: np.ndarray, size: int, height: int, width: int, margin: int = 2):
    """(y0, y1, x0, x1): the photo window the size x size crop of ``matrix`` covers, or None.

    Work is confined to it, so a face in a 10,000 px photo costs what the face costs.
    """
    corners = apply(invert(matrix), [[0, 0], [size, 0], [0, size], [size, size]])
    x0, y0 = np.floor(corners.min(0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(0)).astype(int) + margin
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return (y0, y1, x0, x1) if x1 > x0 and y1 > y0 else None


def shifted(matrix: np.ndarray, dx: float, dy: float, factor: float = 1.0) -> np.ndarray:
    """``matrix`` for a photo window starting at (dx, dy), downsampled by ``factor``."""
    return np.hstack([matrix[:, :2] * factor, (matrix[:, :2] @ [dx, dy] + matrix[:, 2])[:, None]])


def reduction(matrix: np.ndarray) -> int:
    """The whole factor to area-average a photo by before sampling it at ``matrix``'s
    scale, so that bilinear sampling does not alias (1: none)."""
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return max(1, int(1.0 / scale)) if scale < 0.5 else 1


def warp_to_crop(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The size x size uint8 crop that ``matrix`` (photo -> crop pixels) frames; black outside.

    A face much larger than the crop is first area-averaged by a whole factor, so
    the bilinear sampling does not alias (prepare's training crops are
    antialiased too).
    """
    window = footprint(matrix, size, *photo.shape[:2])
    if window is None:
        return np.zeros((size, size, 3), np.uint8)
    import tensorflow as tf  # see the module docstring

    y0, y1, x0, x1 = window
    part = tf.constant(photo[y0:y1, x0:x1][None], tf.float32)
    factor = reduction(matrix)
    if factor > 1:
        part = tf.nn.avg_pool2d(part, factor, factor, "VALID")
    # Window pixel j (downsampled) is photo pixel x0 + factor * j + (factor - 1) / 2.
    local = shifted(matrix, x0 + (factor - 1) / 2, y0 + (factor - 1) / 2, factor)
    crop = _sample(part, invert(local), size, size)[0]
    return np.clip(np.round(crop.numpy()), 0, 255).astype(np.uint8)


def warp_to_photo(values: np.ndarray, matrix: np.ndarray, height: int, width: int):
    """Crop-space values (S, S, C) back onto the photo, inside the crop's footprint.

    Returns ``(window, values, coverage)``: the photo window (y0, y1, x0, x1), the
    values there (h, w, C), and the bilinear weight of the crop at each of its
    pixels (1 inside, 0 outside, between on the border); None if the crop lies
    outside the photo.
    """
    window = footprint(matrix, values.shape[0], height, width)
    if window is None:
        return None
    y0, y1, x0, x1 = window
    ones = np.ones(values.shape[:2] + (1,), np.float32)
    both = np.concatenate([np.asarray(values, np.float32), ones], -1)[None]
    back = _sample(both, shifted(matrix, x0, y0), y1 - y0, x1 - x0)[0].numpy()
    return window, back[..., :-1], back[..., -1]
