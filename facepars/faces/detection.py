"""Finding faces in photos: a small interface, and MTCNN behind it.

A detector is any callable ``photo (H, W, 3) uint8 -> list[Face]``. facepars
ships one, MTCNN: its cascade as TensorFlow ops (facepars.faces.mtcnn_graph) on the
weights of the ``detect`` extra (the ``mtcnn`` package, MIT, its weights inside
the wheel). To use another (RetinaFace, a company's own), wrap it in a function returning
``Face`` objects and pass it to ``Predictor.predict_faces``. For videos, a
detector may also have ``relocate(photo, faces) -> list[Face]``: each face
found again near where it was, cheaply (facepars.inference.tracking); without it, the
detector runs on every frame.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from facepars.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face, in photo pixels."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    landmarks: np.ndarray                   # (5, 2) x, y in facepars.faces.alignment.POINTS order
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    def to_json(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box],
                "landmarks": np.round(self.landmarks, 1).tolist(), "score": round(self.score, 4)}


Detector = Callable[[np.ndarray], list[Face]]


@dataclasses.dataclass(frozen=True)
class FaceFilter:
    """Which detected faces are parsed: predict's ``--min_score`` and ``--min_face``."""

    min_score: float = 0.9
    min_face: float = 20.0  # box width, pixels

    def keeps(self, face: Face) -> bool:
        return face.score >= self.min_score and face.width >= self.min_face

class MTCNNDetector:
    """MTCNN (Zhang et al. 2016) as graph ops (facepars.faces.mtcnn_graph), on the weights
    the ``mtcnn`` package ships; one traced function per call.

    It finds frontal and moderately turned faces down to about 20 px; strong
    profiles are often missed (a missed face stays background).
    """

    def __init__(self):
        import tensorflow as tf  # here: conversion workers import this module without TF

        from facepars.faces import mtcnn_graph
        self.cascade = mtcnn_graph.Cascade()
        photo = tf.TensorSpec([None, None, 3], tf.uint8)
        # No autograph: the cascade's loops and branches are TF ops already, and
        # converting it doubles the first call's tracing time.
        self._detect = tf.function(self.cascade.detect, input_signature=[photo],
                                   autograph=False)
        self._relocate = tf.function(self.cascade.relocate, input_signature=[
            photo, tf.TensorSpec([None, 4], tf.float64)], autograph=False)

    def __call__(self, photo: np.ndarray) -> list[Face]:
        return faces_of(*self._detect(np.ascontiguousarray(photo[..., :3])))

    def relocate(self, photo: np.ndarray, faces: list[Face]) -> list[Face]:
        """Each face found again near where it was, by MTCNN's last stage alone.

        Video tracking (facepars.inference.tracking) calls this between full detections:
        the output network (O-Net) looks at a 48 x 48 patch of each face's square
        box, as it does after the first two stages, and returns the box refined,
        the five points and its confidence that a face is there (a low score
        means the face left or turned away). About a hundredth of a full
        detection's cost, with the same points' convention.
        """
        if not faces:
            return []
        boxes = np.array([f.box for f in faces], np.float64)
        return faces_of(*self._relocate(np.ascontiguousarray(photo[..., :3]), boxes))


def faces_of(boxes, landmarks, scores) -> list[Face]:
    """Faces from the graph's outputs (arrays or tensors): boxes (N, 4), landmarks
    (N, 5, 2), scores (N,)."""
    boxes, landmarks, scores = (np.asarray(t, np.float64) for t in (boxes, landmarks, scores))
    return [Face(tuple(box), points, float(score))
            for box, points, score in zip(boxes.tolist(), landmarks, scores)]


def find(detector: Detector, photo: np.ndarray, keep: FaceFilter = FaceFilter()) -> list[Face]:
    """The detector's faces that ``keep`` keeps."""
    return [f for f in detector(photo) if keep.keeps(f)]


def contains(face: Face, point) -> bool:
    x0, y0, x1, y1 = face.box
    return x0 <= point[0] <= x1 and y0 <= point[1] <= y1


def default_detector() -> Detector | None:
    """MTCNN when the detect extra is installed, else None."""
    try:
        return MTCNNDetector()
    except ConfigError:
        return None


def from_landmarks(landmarks: np.ndarray, score: float = 1.0) -> Face:
    """A Face from known five points (a source's own landmarks, a synthetic face's)."""
    landmarks = np.asarray(landmarks, np.float64)
    eye_distance = np.linalg.norm(landmarks[1] - landmarks[0])
    centre = landmarks.mean(0)
    half = 1.6 * eye_distance
    box = (centre[0] - half, centre[1] - 1.1 * half, centre[0] + half, centre[1] + 0.9 * half)
    return Face(box, landmarks, score)
