"""Finding faces in photos: a small interface, and MTCNN behind it.

A detector is any callable ``photo (H, W, 3) uint8 -> list[Face]``. facepars
ships one, MTCNN (the ``detect`` extra: the ``mtcnn`` package, MIT, its weights
inside the wheel, running on the TensorFlow facepars already has). To use
another (RetinaFace, a company's own), wrap it in a function returning
``Face`` objects and pass it to ``Predictor.predict_faces``. For videos, a
detector may also have ``relocate(photo, faces) -> list[Face]``: each face
found again near where it was, cheaply (facepars.tracking); without it, the
detector runs on every frame.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Callable

import numpy as np

from facepars.alignment import rescale
from facepars.errors import ConfigError
from facepars.imaging import resize_to


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face, in photo pixels."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    landmarks: np.ndarray                   # (5, 2) x, y in facepars.alignment.POINTS order
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    def to_json(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box],
                "landmarks": np.round(self.landmarks, 1).tolist(), "score": round(self.score, 4)}


Detector = Callable[[np.ndarray], list[Face]]

# mtcnn's keypoint names, in facepars's landmark order (its "left" is the image's left).
_MTCNN_POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class MTCNNDetector:
    """MTCNN (Zhang et al. 2016) through the ``mtcnn`` package; CPU by default.

    It finds frontal and moderately turned faces down to about 20 px; strong
    profiles are often missed (a missed face stays background).
    """

    def __init__(self, device: str = "CPU:0"):
        check_installed()
        from mtcnn import MTCNN
        self._mtcnn = MTCNN(device=device)
        self._relocate = _onet_function(self._mtcnn.get_stage(stage_id=3).model)

    # Photos are searched at most this long: MTCNN's image pyramid on a 10,000 px
    # photo takes gigabytes, and a face it can find at full size it finds here.
    max_side = 2000

    def __call__(self, photo: np.ndarray) -> list[Face]:
        if min(photo.shape[:2]) < 12:  # below MTCNN's smallest window
            return []
        scale = min(1.0, self.max_side / max(photo.shape[:2]))
        if scale < 1.0:
            photo = resize_to(photo, max(1, round(photo.shape[0] * scale)),
                              max(1, round(photo.shape[1] * scale)))
        faces = []
        for found in self._mtcnn.detect_faces(np.ascontiguousarray(photo[..., :3])):
            x, y, w, h = (float(v) / scale for v in found["box"])
            points = np.array([found["keypoints"][k] for k in _MTCNN_POINTS], np.float64)
            faces.append(Face((x, y, x + w, y + h), rescale(points, 1.0 / scale),
                              float(found["confidence"])))
        return faces


    def relocate(self, photo: np.ndarray, faces: list[Face]) -> list[Face]:
        """Each face found again near where it was, by MTCNN's last stage alone.

        Video tracking (facepars.tracking) calls this between full detections:
        the output network (ONet) looks at a 48 x 48 patch of each face's square
        box, as it does after the first two stages, and returns the box refined,
        the five points and its confidence that a face is there (a low score
        means the face left or turned away). About a hundredth of a full
        detection's cost, with the same points' convention.
        """
        if not faces:
            return []
        scale = min(1.0, self.max_side / max(photo.shape[:2]))
        if scale < 1.0:
            photo = resize_to(photo, max(1, round(photo.shape[0] * scale)),
                              max(1, round(photo.shape[1] * scale)))
        height, width = photo.shape[:2]
        boxes = np.array([f.box for f in faces], np.float64) * scale
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])  # square, as
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2                               # MTCNN's RNet
        boxes = np.concatenate([centre - side[:, None] / 2, centre + side[:, None] / 2], 1)
        offsets, points, scores = (t.numpy().astype(np.float64) for t in self._relocate(
            np.ascontiguousarray(photo[..., :3]),
            boxes[:, [1, 0, 3, 2]] / [height, width, height, width]))
        size = (boxes[:, 2:] - boxes[:, :2] + 1)  # MTCNN's own (inclusive) box sizes
        refined = boxes + offsets * np.tile(size, 2)
        xs = size[:, :1] * points[:, :5] + boxes[:, :1] - 1
        ys = size[:, 1:] * points[:, 5:] + boxes[:, 1:2] - 1
        return [Face(tuple(box / scale), rescale(np.stack([x, y], 1), 1.0 / scale), float(score))
                for box, x, y, score in zip(refined, xs, ys, scores[:, 1])]


def _onet_function(onet):
    """ONet on the patches of (N, 4) normalised y0, x0, y1, x1 boxes of a uint8 photo,
    as one traced function (a Keras model called eagerly runs layer by layer)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8),
                                  tf.TensorSpec([None, 4], tf.float64)])
    def run(photo, boxes):
        # Cropping is linear, so normalising the patches equals MTCNN's normalising the photo.
        patches = tf.image.crop_and_resize(
            tf.cast(photo[None], tf.float32), tf.cast(boxes, tf.float32),
            tf.zeros(tf.shape(boxes)[:1], tf.int32), (48, 48))
        return onet((patches - 127.5) / 128)
    return run


def check_installed() -> None:
    """Raise, saying what to install, if the detect extra is missing."""
    if importlib.util.find_spec("mtcnn") is None:
        raise ConfigError("face detection needs the detect extra: pip install 'facepars[detect]'")


def find(detector: Detector, photo: np.ndarray, min_score: float = 0.9,
         min_size: float = 20.0) -> list[Face]:
    """The detector's faces with at least ``min_score`` and a box ``min_size`` px wide."""
    return [f for f in detector(photo) if f.score >= min_score and f.width >= min_size]


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
