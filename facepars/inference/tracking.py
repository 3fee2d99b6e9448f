"""Faces followed from frame to frame of a video, and labels that hold still.

Running the detector on every frame would cost as much as parsing, or more
(BUILD_NOTES.md has the figures), and its landmarks jitter by a pixel or two
from frame to frame, which moves the crop and makes the labels flicker. So a
video is parsed this way (``FaceTracker.parse``):

- The detector runs on the first frame, every ``detect_every`` frames (for faces
  that come in; every ``FaceTracker.search_every`` while no face is tracked),
  and on the frame after a track was lost, on a second thread while the next
  frames are parsed.
- Between detections each face is found again near its last box by the
  detector's ``relocate`` (for MTCNN, its last stage alone on a 48 x 48 patch:
  about 3 ms against 300), which gives this frame's five points and a score; a
  score under ``min_score`` ends the track (the face left, turned away or was
  covered), as MediaPipe's face mesh ends one when its face-presence score
  drops. A detector without ``relocate`` runs on every frame instead.
- With ``smooth`` on, the points pass through a one-euro filter (Casiez, Roussel
  and Vogel, CHI 2012): strong smoothing while a face is still, little lag when
  it moves. Speeds are measured in eye distances per second, so the same
  settings serve a face of 30 px and one of 300 px.
- With ``smooth`` on, each face's crop probabilities are blended with its
  previous crop's where the current frame is unsure, the way MediaPipe's
  segmentation smoothing blends masks: the weight of the previous frame is
  ``ratio`` times the normalised entropy of the current pixel, so sure pixels
  keep their own label and only the uncertain ones (edges, thin parts) lean on
  the past. Crops are aligned to the face, so the previous crop's pixel is the
  same point of the face, not the same point of the frame.

Without a detector (``--faces=whole``) each frame is parsed whole, and
smoothing blends the whole frame's probabilities the same way.
"""

from __future__ import annotations

import dataclasses
import itertools
from concurrent import futures
from typing import Callable

import numpy as np

from facepars.faces import detection
from facepars.inference.predictor import Prediction, Predictor


class OneEuro:
    """The one-euro filter on an array of values sampled at ``rate`` Hz.

    ``min_cutoff`` (Hz) sets the smoothing of a still signal, ``beta`` how fast
    the cutoff rises with speed (in units of ``scale`` per second), ``d_cutoff``
    the smoothing of the speed estimate itself.
    """

    def __init__(self, rate: float, min_cutoff: float = 1.0, beta: float = 1.0,
                 d_cutoff: float = 1.0):
        self.period, self.min_cutoff, self.beta, self.d_cutoff = 1.0 / rate, min_cutoff, beta, \
            d_cutoff
        self.value = self.speed = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / self.period)

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.value is None:
            self.value, self.speed = x, np.zeros_like(x)
            return x
        raw_speed = (x - self.value) / self.period
        a = self._alpha(self.d_cutoff)
        self.speed = a * raw_speed + (1 - a) * self.speed
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed) / scale
        a = self._alpha(cutoff)
        self.value = a * x + (1 - a) * self.value
        return self.value


def blend(current: np.ndarray, previous: np.ndarray | None, ratio: float) -> np.ndarray:
    """Probabilities (..., C) leaning on ``previous`` where ``current`` is unsure."""
    if previous is None or ratio <= 0:
        return current
    p = np.clip(current, 1e-7, 1.0)
    entropy = -(p * np.log(p)).sum(-1, keepdims=True) / np.log(current.shape[-1])
    weight = ratio * np.clip(entropy, 0.0, 1.0)
    return current + (previous - current) * weight


@dataclasses.dataclass
class Track:
    """One face followed through the video."""

    id: int
    found: detection.Face               # where the detector last found it, this frame
    filter: OneEuro
    landmarks: np.ndarray | None = None  # (5, 2) smoothed: where its crop is cut
    previous: np.ndarray | None = None   # the last crop's probabilities, for blending

    def face(self) -> detection.Face:
        return dataclasses.replace(self.found, landmarks=self.landmarks)

    def to_json(self) -> dict:
        return {"track": self.id, **self.face().to_json()}


def _eye_distance(landmarks: np.ndarray) -> float:
    return max(float(np.linalg.norm(landmarks[1] - landmarks[0])), 1.0)


class FaceTracker:
    """Parses the frames of one video in order; see the module docstring.

    ``min_cutoff`` 3 Hz, not the paper's 1 Hz: at 1 Hz the points lag a moving face
    enough to cost face mIoU, and 3 Hz holds the labels as still (BUILD_NOTES.md,
    bench/video_bench.py).

    A detection started at frame t is applied at frame t + ``lag`` (at once when
    no face is being tracked), waiting for it if need be, so the outputs never
    depend on how fast it ran. Call ``close`` when done.
    """

    # While no face is tracked, the detector looks this often (in frames), so a
    # face coming into an empty scene is picked up within a fraction of a second.
    search_every = 5

    def __init__(self, predictor: Predictor, detector, fps: float, smooth: bool = True,
                 detect_every: int = 30, keep: detection.FaceFilter = detection.FaceFilter(),
                 ratio: float = 0.9, min_cutoff: float = 3.0, beta: float = 1.0, lag: int = 5):
        self.predictor, self.detector, self.fps, self.smooth = predictor, detector, fps, smooth
        self.relocate = getattr(detector, "relocate", None)
        self.detect_every = max(1, detect_every) if self.relocate else 1
        self.keep = keep
        self.ratio, self.min_cutoff, self.beta = ratio, min_cutoff, beta
        self.lag = max(0, min(lag, self.detect_every - 1))
        self.tracks: list[Track] = []
        self.frame = -1  # the index of the frame being parsed
        self.detections = 0  # frames the detector ran on, for the summary
        self.last_faces: list[dict] = []  # the faces the last frame was parsed with
        self._last_detection = None
        self._lost = False
        self._pending = None  # (frame to apply it at, future)
        self._pool = futures.ThreadPoolExecutor(1) if detector is not None else None
        self._ids = itertools.count()
        self._previous_whole = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def parse(self, frame: np.ndarray) -> Prediction:
        """The next frame's labels, with this frame's tracks' faces in ``last_faces``."""
        return self.track(frame)()

    def track(self, frame: np.ndarray) -> Callable[[], Prediction]:
        """``parse`` in two halves: this one finds the faces on the frame and parses
        their crops; the function it returns puts their labels back onto the frame.

        The second half is the costlier and the next frame does not wait for it,
        so facepars.inference.video runs it on its output thread, beside the next ``track``.
        """
        self.frame += 1
        if self.detector is None:
            prediction = self.predictor.predict_batch([frame], probabilities=self.smooth)[0]
            if self.smooth:
                probs = blend(prediction.probabilities, self._previous_whole, self.ratio)
                self._previous_whole = probs
                prediction = Prediction(probs.argmax(-1).astype(np.uint8))
            return lambda: prediction
        found = self._detect(frame)
        self._follow(frame, found)
        tracks = list(self.tracks)
        faces = [t.face() for t in tracks]
        self.last_faces = [t.to_json() for t in tracks]
        matrices, probs = self.predictor.parse_crops(frame, faces)
        if self.smooth and tracks:
            probs = np.stack([blend(p, t.previous, self.ratio) for p, t in zip(probs, tracks)])
            for track, prob in zip(tracks, probs):
                track.previous = prob
        return lambda: self.predictor.merge_crops(frame.shape[:2], faces, matrices, probs)

    def _detect(self, frame: np.ndarray) -> list | None:
        """Start a detection when one is due; the faces of the one whose frame has come."""
        every = self.detect_every if self.tracks else min(self.detect_every, self.search_every)
        due = (self._last_detection is None or self._lost
               or self.frame - self._last_detection >= every)
        if due and self._pending is None:
            self.detections += 1
            self._last_detection, self._lost = self.frame, False
            at = self.frame + (self.lag if self.tracks else 0)
            self._pending = (at, self._pool.submit(detection.find, self.detector, frame,
                                                   self.keep))
        if self._pending is None or self.frame < self._pending[0]:
            return None
        found = self._pending[1].result()
        self._pending = None
        return found

    def _follow(self, frame: np.ndarray, found: list | None) -> None:
        """Every track's face on this frame: new tracks for detected faces no track
        follows, then each face found again where it is now; of two tracks that
        came onto one face, the younger ends.

        Without ``relocate``, the detector ran on this very frame (``detect_every``
        is 1 then) and each track takes the most confident detection on its face.
        """
        for face in sorted(found or [], key=lambda f: -f.score):
            if not any(_same_face(t.found.landmarks, face.landmarks) for t in self.tracks):
                self.tracks.append(Track(next(self._ids), face,
                                         OneEuro(self.fps, self.min_cutoff, self.beta)))
        if self.relocate is not None:
            here = self.relocate(frame, [t.found for t in self.tracks])
        else:
            here = [max((f for f in found if _same_face(f.landmarks, t.found.landmarks)),
                        key=lambda f: f.score, default=None) for t in self.tracks]
        kept = []
        for track, face in zip(self.tracks, here):
            if face is None or face.score < self.keep.min_score:
                self._lost = True  # look for faces on the next frame
            elif not any(_same_face(t.found.landmarks, face.landmarks) for t in kept):
                track.found = face
                track.landmarks = (track.filter(face.landmarks, _eye_distance(face.landmarks))
                                   if self.smooth else face.landmarks)
                kept.append(track)
        self.tracks = kept


def _same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Two sets of five points on one face: centres within half an eye distance."""
    return np.linalg.norm(a.mean(0) - b.mean(0)) < 0.5 * _eye_distance(a)
