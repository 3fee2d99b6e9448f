"""MTCNN's cascade as TensorFlow ops: a photo to its faces in one traced function.

The ``mtcnn`` package (the detect extra) ships the weights of the three networks
and runs them from Python, one pyramid scale at a time, with its box arithmetic
and non-maximum suppression in numpy. Here the same cascade is graph ops end to
end: it runs in one ``tf.function`` without Python between the stages, and it
goes into the exported SavedModel (``parse_photos``, facepars.export), where TF
Serving runs it. The arithmetic follows the package step by step, its
conventions included (regression on inclusive box sizes, its suppression rule),
so the faces agree with it; ``tests/faces/test_mtcnn_graph.py`` measures how closely.

Boxes are float64 x0, y0, x1, y1 (as the package computes them), the networks
float32. This runs around the parsing network, never inside a training step.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import tensorflow as tf

from facepars.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class CascadeSettings:
    """The package's defaults (``MTCNN.detect_faces``), which facepars uses."""

    min_face_size: float = 20.0        # the pyramid's first scale is 12 / this
    scale_factor: float = 0.709        # between pyramid levels
    thresholds: tuple = (0.6, 0.7, 0.8)  # P-Net, R-Net, O-Net face scores
    pnet_nms: tuple = (0.5, 0.7)       # IoU per scale, then across scales
    rnet_nms: float = 0.7
    onet_nms: float = 0.7              # over the smaller box's area, not the union
    # Photos are searched at most this long: the pyramid of a 10,000 px photo takes
    # gigabytes, and a face found at full size is found at this size too.
    max_side: int = 2000


def check_installed() -> None:
    """Raise, saying what to install, if the detect extra (MTCNN's weights) is missing."""
    if importlib.util.find_spec("mtcnn") is None:
        raise ConfigError("face detection needs the detect extra: pip install 'facepars[detect]'")


_CELL, _STRIDE = 12.0, 2.0  # P-Net's window and its step over a pyramid level


def normalise(image: tf.Tensor) -> tf.Tensor:
    """uint8 pixels -> MTCNN's input range, (x - 127.5) / 128."""
    return (tf.cast(image, tf.float32) - 127.5) / 128.0


def suppress(boxes: tf.Tensor, scores: tf.Tensor, threshold: float, over: str = "union",
             sort: bool = True) -> tf.Tensor:
    """Indices of the boxes the package's non-maximum suppression keeps, best first.

    Its rule, not the greedy one: a box goes when any better-scored box overlaps it
    by more than ``threshold``, even one that is itself suppressed. ``over``: the
    overlap's denominator, "union" (IoU) or "min" (the smaller area). Ties in score
    keep their order (a stable sort; numpy's quicksort may swap them).
    """
    order = (tf.argsort(scores, direction="DESCENDING", stable=True) if sort
             else tf.range(tf.shape(scores)[0]))
    b = tf.gather(boxes, order)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wide = tf.maximum(tf.minimum(b[None, :, 2], b[:, None, 2])
                      - tf.maximum(b[None, :, 0], b[:, None, 0]), 0.0)
    high = tf.maximum(tf.minimum(b[None, :, 3], b[:, None, 3])
                      - tf.maximum(b[None, :, 1], b[:, None, 1]), 0.0)
    inter = wide * high
    if over == "union":
        overlap = inter / (area[:, None] + area[None, :] - inter)
    else:
        overlap = inter / tf.minimum(area[:, None], area[None, :])
    n = tf.shape(b)[0]
    later = tf.linalg.band_part(tf.ones([n, n], tf.bool), 0, -1) & ~tf.eye(n, dtype=tf.bool)
    beaten = tf.reduce_any((overlap > threshold) & later, axis=0)  # row i beats column j > i
    return tf.boolean_mask(order, ~beaten)


def square(boxes: tf.Tensor) -> tf.Tensor:
    """Each box grown to a square on its longer side, about its centre."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = tf.maximum(w, h)
    x0, y0 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return tf.stack([x0, y0, x0 + side, y0 + side], 1)


def refine(boxes: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
    """A stage's regression applied: offsets in units of the box's inclusive size."""
    size = tf.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], 1)
    return boxes + tf.cast(offsets, tf.float64) * tf.tile(size, [1, 2])


def scales(height: tf.Tensor, width: tf.Tensor, settings: CascadeSettings) -> tf.Tensor:
    """The pyramid's scales for a photo: 12 / min_face_size, then times scale_factor,
    as many as the package takes (float64, so each level's size floors as its does)."""
    shortest = tf.cast(tf.minimum(height, width), tf.float64)
    factor = tf.constant(settings.scale_factor, tf.float64)
    count = tf.round(-(tf.math.log(shortest / _CELL) / tf.math.log(factor) + 1.0))
    count = tf.where(shortest < _CELL, tf.zeros_like(count), tf.maximum(count, 0.0))
    first = _CELL / settings.min_face_size
    return first * factor ** tf.range(count, dtype=tf.float64)


class Cascade:
    """P-Net, R-Net and O-Net with the weights the mtcnn wheel ships, as graph ops.

    ``detect(photo)`` and ``relocate(photo, boxes)`` are plain TensorFlow code:
    wrap them in a ``tf.function`` (facepars.faces.detection does) or call them inside
    one (the SavedModel's ``parse_photos``). ``networks`` are the Keras models an
    exporter must track.
    """

    def __init__(self, settings: CascadeSettings = CascadeSettings()):
        check_installed()
        from mtcnn.network.onet import ONet
        from mtcnn.network.pnet import PNet
        from mtcnn.network.rnet import RNet
        from mtcnn.utils.tensorflow import load_weights
        self.settings = settings
        self.networks = []
        for network, weights in ((PNet, "pnet.lz4"), (RNet, "rnet.lz4"), (ONet, "onet.lz4")):
            model = network()
            model.build()
            model.set_weights(load_weights(weights))
            self.networks.append(model)
        self.pnet, self.rnet, self.onet = self.networks

    def detect(self, photo: tf.Tensor):
        """uint8 (H, W, 3) -> float64 boxes (N, 4) x0, y0, x1, y1 clipped to the photo,
        landmarks (N, 5, 2) in facepars.faces.alignment.POINTS order, float32 scores (N,)."""
        image, shrink = self._searched(photo)
        boxes, points, scores = self._onet(image, self._rnet(image, self._proposals(image)))
        high = tf.cast(tf.shape(image)[1:3] - 1, tf.float64)
        boxes = tf.clip_by_value(boxes, 0.0, tf.tile(tf.reverse(high, [0]), [2]))
        return boxes / shrink, self._back(points, shrink), scores

    def relocate(self, photo: tf.Tensor, boxes: tf.Tensor):
        """Each box's face found again near it by O-Net alone (video tracking between
        full detections): float64 (N, 4) boxes in, ``detect``'s outputs for each,
        neither cut by score nor suppressed.

        O-Net looks at the 48 x 48 patch of each box made square, as after R-Net.
        """
        image, shrink = self._searched(photo)
        found, points, scores = self._onet(image, square(boxes * shrink), last_stage=False)
        return found / shrink, self._back(points, shrink), scores

    def _searched(self, photo: tf.Tensor):
        """The normalised (1, h, w, 3) image the cascade searches, and its scale:
        the photo, or the photo shrunk (antialiased) to ``max_side``."""
        size = tf.cast(tf.shape(photo)[:2], tf.float64)
        shrink = tf.minimum(self.settings.max_side / tf.reduce_max(size), 1.0)
        pixels = tf.cast(photo, tf.float32)
        pixels = tf.cond(shrink < 1.0, lambda: tf.round(tf.clip_by_value(tf.image.resize(
            pixels, tf.cast(tf.round(size * shrink), tf.int32), antialias=True), 0.0, 255.0)),
            lambda: pixels)
        return normalise(pixels)[None], shrink

    @staticmethod
    def _back(points: tf.Tensor, shrink: tf.Tensor) -> tf.Tensor:
        """Points of the searched image in the photo's pixels (centres at whole numbers)."""
        return (points + 0.5) / shrink - 0.5

    def _proposals(self, image: tf.Tensor) -> tf.Tensor:
        """P-Net over the pyramid: candidate boxes (float64, square), best first."""
        s = self.settings
        size = tf.cast(tf.shape(image)[1:3], tf.float64)
        levels = scales(tf.shape(image)[1], tf.shape(image)[2], s)

        def level(i, found):
            scale = levels[i]
            scaled = tf.image.resize(image, tf.cast(size * scale, tf.int32), method="area")
            regression, face = self.pnet(scaled)
            score = face[0, :, :, 1]
            cells = tf.where(score > s.thresholds[0])
            score = tf.gather_nd(score, cells)
            offsets = tf.cast(tf.gather_nd(regression[0], cells), tf.float64)
            yx = tf.cast(cells, tf.float64) * _STRIDE
            corner = tf.stack([yx[:, 1] + 1, yx[:, 0] + 1, yx[:, 1] + _CELL, yx[:, 0] + _CELL], 1)
            boxes = (corner + offsets * (_CELL - 1)) / scale
            order = tf.argsort(score, direction="DESCENDING", stable=True)
            boxes, score = tf.gather(boxes, order), tf.gather(score, order)
            keep = suppress(boxes, score, s.pnet_nms[0], sort=False)
            return i + 1, found.write(i, tf.concat([tf.gather(boxes, keep), tf.cast(
                tf.gather(score, keep), tf.float64)[:, None]], 1))

        found = tf.TensorArray(tf.float64, size=tf.size(levels), infer_shape=False,
                               element_shape=tf.TensorShape([None, 5]))
        _, found = tf.while_loop(lambda i, _: i < tf.size(levels), level, (0, found))
        found = tf.cond(tf.size(levels) > 0, found.concat, lambda: tf.zeros([0, 5], tf.float64))
        boxes, score = found[:, :4], found[:, 4]
        return square(tf.gather(boxes, suppress(boxes, score, s.pnet_nms[1])))

    def _patches(self, image: tf.Tensor, boxes: tf.Tensor, size: int) -> tf.Tensor:
        """The boxes' patches, resized to size x size, as the package cuts them."""
        h, w = tf.unstack(tf.cast(tf.shape(image)[1:3], tf.float64))
        unit = tf.stack([boxes[:, 1] / h, boxes[:, 0] / w, boxes[:, 3] / h, boxes[:, 2] / w], 1)
        return tf.image.crop_and_resize(image, tf.cast(unit, tf.float32),
                                        tf.zeros(tf.shape(boxes)[:1], tf.int32), (size, size))

    def _rnet(self, image: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
        """R-Net on the proposals: the refined boxes it keeps, square, best first."""
        offsets, face = _on_patches(self.rnet, self._patches(image, boxes, 24), (4, 2))
        boxes, score = refine(boxes, offsets), face[:, 1]
        keep = score > self.settings.thresholds[1]
        boxes, score = tf.boolean_mask(boxes, keep), tf.boolean_mask(score, keep)
        return square(tf.gather(boxes, suppress(boxes, score, self.settings.rnet_nms)))

    def _onet(self, image: tf.Tensor, boxes: tf.Tensor, last_stage: bool = True):
        """O-Net on square boxes: refined boxes, five points, scores. As the
        detection's last stage, cut by score and suppressed; else for every box."""
        offsets, points, face = _on_patches(self.onet, self._patches(image, boxes, 48),
                                            (4, 10, 2))
        size = tf.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], 1)
        points = tf.cast(points, tf.float64)
        points = tf.stack([size[:, :1] * points[:, :5] + boxes[:, :1] - 1,
                           size[:, 1:] * points[:, 5:] + boxes[:, 1:2] - 1], 2)
        boxes, score = refine(boxes, offsets), face[:, 1]
        if not last_stage:
            return boxes, points, score
        keep = score > self.settings.thresholds[2]
        boxes, points, score = (tf.boolean_mask(t, keep) for t in (boxes, points, score))
        chosen = suppress(boxes, score, self.settings.onet_nms, over="min")
        return tf.gather(boxes, chosen), tf.gather(points, chosen), tf.gather(score, chosen)


def _on_patches(network, patches: tf.Tensor, widths: tuple) -> list:
    """A stage's network on its patches; empty outputs of ``widths`` when there are
    none (Keras layers refuse a batch of zero under oneDNN)."""
    return tf.cond(tf.shape(patches)[0] > 0, lambda: list(network(patches)),
                   lambda: [tf.zeros([0, w]) for w in widths])
