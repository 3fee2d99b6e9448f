"""facepars.inference.tracking: the one-euro filter, probability blending, and faces followed
through a video by their own parse.

The tracker tests use the colour parser (tests/colour_parser.py: the class read
from the pixel colour, exact in any geometry): a face is labelled right exactly when its
crop holds it, so what they measure is where the tracker cuts the crops.
"""

import numpy as np
import pytest
import scipy.stats

from facepars.data import synthetic
from facepars.faces import detection
from facepars.inference import tracking

from colour_parser import SYNTHETIC_LUT, colour_predictor, paint, synthetic_framing


def test_one_euro_without_speed_term_is_the_exponential_average_of_its_cutoff():
    """beta = 0: a first-order low-pass, alpha = 1 / (1 + rate / (2 pi min_cutoff))."""
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 1, (200, 2))
    one_euro = tracking.OneEuro(rate=30.0, min_cutoff=1.5, beta=0.0)
    alpha = 1.0 / (1.0 + 30.0 / (2 * np.pi * 1.5))
    expected = signal[0]
    for x in signal:
        got = one_euro(x)
        if x is not signal[0]:
            expected = alpha * x + (1 - alpha) * expected
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_one_euro_holds_a_still_point_and_follows_a_moving_one():
    """Noise on a still point is cut; a point moving at 3 eye distances per second
    is followed with less lag than the still-point smoothing alone would give."""
    rng = np.random.default_rng(1)
    still = 100 + rng.normal(0, 2.0, 300)
    one_euro = tracking.OneEuro(30.0, beta=1.0)
    filtered = np.array([one_euro(x, scale=50.0) for x in still])  # eyes 50 px apart
    assert filtered[30:].std() < 0.35 * still[30:].std()

    ramp = 100 + 3 * 50 * np.arange(90) / 30.0  # 3 eye distances of 50 px per second

    def lag(beta):
        one_euro = tracking.OneEuro(30.0, beta=beta)
        return (ramp - np.array([one_euro(x, scale=50.0) for x in ramp]))[45:].mean()

    assert lag(1.0) < 0.5 * lag(0.0), (lag(1.0), lag(0.0))


def test_blend_leans_on_the_past_only_where_the_present_is_unsure():
    rng = np.random.default_rng(2)
    current = rng.dirichlet(np.full(8, 0.3), (16, 16)).astype(np.float32)
    current[0, 0] = np.eye(8)[3] * 0.9999 + 0.0001 / 8  # sure of class 3
    current[0, 1] = 1.0 / 8  # knows nothing
    previous = rng.dirichlet(np.ones(8), (16, 16)).astype(np.float32)
    got = tracking.blend(current, previous, ratio=0.8)
    weight = 0.8 * scipy.stats.entropy(current, axis=-1)[..., None] / np.log(8)
    np.testing.assert_allclose(got, (1 - weight) * current + weight * previous, atol=1e-5)
    np.testing.assert_allclose(got[0, 0], current[0, 0], atol=2e-3)
    np.testing.assert_allclose(got[0, 1], 0.2 * current[0, 1] + 0.8 * previous[0, 1], atol=1e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    assert tracking.blend(current, None, 0.8) is current


class _Detector:
    """Finds the faces a frame shows at their exact five points, and finds them again
    near where they were (``relocate``, score 0 when gone); counts its full runs.
    ``hidden_until``: faces after the first stay unseen by full runs before that frame."""

    def __init__(self, video, hidden_until=0):
        self.video, self.hidden_until, self.calls = video, hidden_until, []

    def _points(self, frame):
        index = next(i for i, (f, _, _) in enumerate(self.video) if f is frame)
        return index, self.video[index][2]

    def __call__(self, frame):
        index, points = self._points(frame)
        self.calls.append(index)
        return [detection.from_landmarks(p)
                for p in (points if index >= self.hidden_until else points[:1])]

    def relocate(self, frame, faces):
        _, points = self._points(frame)
        out = []
        for face in faces:
            near = [p for p in points if np.linalg.norm(p.mean(0) - face.landmarks.mean(0)) < 20]
            out.append(detection.from_landmarks(near[0]) if near
                       else detection.Face(face.box, face.landmarks, 0.0))
        return out


def _video(frames, blank=(), **motion):
    """Painted frames of moving synthetic faces, their true labels and five points."""
    out = []
    for t, (_, mask, _, points, _) in enumerate(synthetic.moving_faces(4, frames, 240, 320,
                                                                       **motion)):
        labels = np.zeros_like(mask) if t in blank else SYNTHETIC_LUT[mask]
        out.append((paint(labels), labels, [] if t in blank else points))
    return out


def _agreement(labels, truth):
    face = (labels > 0) | (truth > 0)
    return (labels[face] == truth[face]).mean()


def _run(tracker, video):
    """Each frame's agreement with the truth (None where either has no face) and track ids."""
    scores, tracks = [], []
    try:
        for frame, truth, _ in video:
            labels = tracker.parse(frame).labels
            scores.append(_agreement(labels, truth) if truth.any() else (labels == 0).all())
            tracks.append([f["track"] for f in tracker.last_faces])
    finally:
        tracker.close()
    return np.array(scores, float), tracks


@pytest.mark.parametrize("smooth", [False, True])
def test_a_face_is_found_again_on_every_frame_between_detections(smooth):
    """The face drifts 40 % of the frame and turns while the full detector runs
    only on frame 0: every frame is labelled as the truth is (a tracker that kept
    frame 0's crop loses the face's edge within a few frames)."""
    video = _video(30, motion=0.4)
    detector = _Detector(video)
    scores, tracks = _run(tracking.FaceTracker(
        colour_predictor(synthetic_framing()), detector, fps=30.0, smooth=smooth,
        detect_every=1000), video)
    assert detector.calls == [0]
    assert scores.min() > 0.97, np.round(scores, 3)
    assert tracks == [[0]] * 30


def test_a_face_that_leaves_ends_its_track_and_is_found_again_when_it_returns():
    video = _video(24, blank=range(8, 13), motion=0.1)
    detector = _Detector(video)
    scores, tracks = _run(tracking.FaceTracker(
        colour_predictor(synthetic_framing()), detector, fps=30.0, detect_every=1000, lag=3),
        video)
    # Tracked until it left; the detector looks on the frame after the loss, then
    # every search_every frames; the face back at 13 is found at the look after.
    assert tracks[:8] == [[0]] * 8 and tracks[8:14] == [[]] * 6 and tracks[14:] == [[1]] * 10
    assert detector.calls == [0, 9, 14]
    assert scores[:8].min() > 0.97 and scores[8:13].all() and scores[14:].min() > 0.97


def test_a_detection_starts_a_track_lag_frames_later_and_no_face_is_tracked_twice():
    """With a face tracked, a detection runs beside the parsing and is applied
    ``lag`` frames on. The second face, which full runs see from frame 6, is
    tracked from frame 9 and labelled right from then; the first, found again
    by every detection, keeps its one track."""
    video = _video(16, num_faces=2, motion=0.1)
    detector = _Detector(video, hidden_until=6)
    scores, tracks = _run(tracking.FaceTracker(
        colour_predictor(synthetic_framing()), detector, fps=30.0, detect_every=6, lag=3),
        video)
    assert detector.calls == [0, 6, 12]
    assert tracks == [[0]] * 9 + [[0, 1]] * 7
    assert scores[9:].min() > 0.97


def test_a_detector_without_relocate_runs_on_every_frame_and_tracks_keep_their_ids():
    video = _video(10, motion=0.4)
    full = _Detector(video)
    scores, tracks = _run(tracking.FaceTracker(
        colour_predictor(synthetic_framing()), full.__call__, fps=30.0), video)
    assert full.calls == list(range(10))
    assert tracks == [[0]] * 10 and scores.min() > 0.97


class _Scripted:
    """A predictor whose crop probabilities the test writes: ``script[t][i]`` is the
    class face ``i`` is sure of on frame ``t`` (None: knows nothing). It records the
    faces it is asked to cut and the probabilities merged back, per frame."""

    def __init__(self, script, size=8, num_classes=8):
        self.script, self.size, self.num_classes = script, size, num_classes
        self.cut, self.merged = [], []

    def parse_crops(self, frame, faces):
        t = len(self.cut)
        self.cut.append([f.landmarks.copy() for f in faces])
        probs = np.full((len(faces), self.size, self.size, self.num_classes),
                        1.0 / self.num_classes, np.float32)
        for i, sure in enumerate(self.script[t][:len(faces)]):
            if sure is not None:
                probs[i] = np.eye(self.num_classes)[sure] * 0.999 + 0.001 / self.num_classes
        return [None] * len(faces), probs

    def merge_crops(self, size, faces, matrices, probs):
        self.merged.append(probs.argmax(-1))
        return None


def _scripted_run(script, video, smooth):
    """The tracker (full detection on frame 0 only) over ``video`` with a _Scripted
    predictor; returns both, the tracker closed."""
    predictor = _Scripted(script)
    tracker = tracking.FaceTracker(predictor, _Detector(video), fps=30.0, smooth=smooth,
                                   detect_every=1000)
    try:
        for frame, _, _ in video:
            tracker.parse(frame)
    finally:
        tracker.close()
    return predictor, tracker


def test_smoothing_leans_each_face_on_its_own_previous_frame_and_never_on_an_older_one():
    """Two faces. Frame 0: face 0 sure of class 1, face 1 of class 2; frame 1: sure
    of 3 and 4 (a sure present is not dragged back: no lag); frame 2: both know
    nothing, so each takes its own frame-1 labels (not the other face's, not frame
    0's); without smoothing they fall to class 0. Caught planted: histories swapped
    between the faces, blending with an older frame, no blending."""
    video = _video(3, num_faces=2, motion=0.05)
    script = [(1, 2), (3, 4), (None, None)]
    for smooth, expected in ((True, [(1, 2), (3, 4), (3, 4)]),
                             (False, [(1, 2), (3, 4), (0, 0)])):
        predictor = _scripted_run(script, video, smooth)[0]
        got = [tuple(int(np.bincount(labels.ravel()).argmax()) for labels in frame)
               for frame in predictor.merged]
        assert got == expected, (smooth, got)
        assert all((labels == labels.flat[0]).all() for f in predictor.merged for labels in f)


def test_each_crop_is_cut_on_this_frames_points_through_the_filter():
    """The points a face's crop is cut on, frame by frame: this frame's detected
    points through the one-euro filter (smoothing on), or as detected (off). A
    tracker that filtered the previous frame's points lags one frame behind."""
    video = _video(12, motion=0.4)
    for smooth in (True, False):
        predictor, tracker = _scripted_run([(1,)] * 12, video, smooth)
        one_euro = tracking.OneEuro(30.0, tracker.min_cutoff, tracker.beta)
        for t, (_, _, points) in enumerate(video):
            true = points[0]
            eyes = max(float(np.linalg.norm(true[1] - true[0])), 1.0)
            expected = one_euro(true, eyes) if smooth else true
            np.testing.assert_allclose(predictor.cut[t][0], expected, atol=1e-9,
                                       err_msg=f"frame {t}, smooth={smooth}")
