"""Where faces sit in the training crops: five points measured from the masks.

A model learns faces at the positions, sizes and angles its training crops show
them. To parse a face found in a larger photo, prediction warps it to the same
place (facepars.faces.alignment). For sources without landmarks that place is measured
here, from the label masks prepare writes: per record the five points (eye
centres, nose tip, mouth corners; facepars.faces.alignment.POINTS), then per point
the median over the training split, recorded in the manifest as ``framing``.

The points a mask gives: the centroid of each eye (a merged "eyes" class is
split at the widest gap between its columns); the nose tip, the mean of the
nose pixels reaching furthest along the face's own downward axis (eye midpoint
to mouth centroid, so a tilted head gives the tip, not the lowest image row);
the mouth corners, the means of the mouth pixels furthest out along the eye
line either way. A record missing any of those parts (occluded, cut off) gives
no points. Which classes are eyes, nose and mouth comes from the parts each
class of the table holds (``ClassTable.classes_of``); a table that names no
eyes, nose or mouth part has no framing (predict then parses whole photos).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from facepars.core.classes import ClassTable

_MIN_PIXELS = 3


@dataclasses.dataclass(frozen=True)
class FramingClasses:
    """The class ids of a table that the five points are measured from."""

    eyes: tuple[int, ...]   # one merged class, or (left, right)
    nose: int
    mouth: tuple[int, ...]

    @classmethod
    def of(cls, table: ClassTable) -> "FramingClasses | None":
        """None for a table without eyes, nose or mouth classes."""
        eyes = table.classes_of(("l_eye", "r_eye"))  # one merged class or two
        nose = table.classes_of(("nose",))
        mouth = table.classes_of(("u_lip", "l_lip", "inner_mouth"))
        if not eyes or len(nose) != 1 or not mouth:
            return None
        return cls(eyes, nose[0], mouth)


def points_from_mask(mask: np.ndarray, classes: FramingClasses) -> np.ndarray | None:
    """(5, 2) x, y of the five points in ``mask``'s pixels, or None if a part is missing."""
    def pixels(ids):
        ys, xs = np.nonzero(np.isin(mask, ids))
        return xs.astype(np.float64), ys.astype(np.float64)

    if len(classes.eyes) == 2:
        eyes = [pixels([c]) for c in classes.eyes]
    else:
        xs, ys = pixels(list(classes.eyes))
        if len(xs) < 2 * _MIN_PIXELS:
            return None
        order = np.sort(xs)
        split = order[np.argmax(np.diff(order))] + 0.5  # the widest gap between columns
        eyes = [(xs[xs < split], ys[xs < split]), (xs[xs > split], ys[xs > split])]
    nose_x, nose_y = pixels([classes.nose])
    mouth_x, mouth_y = pixels(list(classes.mouth))
    if min(len(x) for x, _ in eyes) < _MIN_PIXELS or len(nose_x) < _MIN_PIXELS \
            or len(mouth_x) < _MIN_PIXELS:
        return None
    left_eye = np.array([eyes[0][0].mean(), eyes[0][1].mean()])
    right_eye = np.array([eyes[1][0].mean(), eyes[1][1].mean()])
    # The tip: the nose's far end along the face's own downward axis (eyes to
    # mouth), so a tilted head gives the tip, not the lowest image row.
    down = np.array([mouth_x.mean(), mouth_y.mean()]) - (left_eye + right_eye) / 2
    reach = nose_x * down[0] + nose_y * down[1]
    tip = reach >= np.percentile(reach, 97)
    # The corners: the mouth's ends along the eye line, likewise.
    across = mouth_x * (right_eye - left_eye)[0] + mouth_y * (right_eye - left_eye)[1]
    left, right = across <= np.percentile(across, 2), across >= np.percentile(across, 98)
    return np.array([left_eye, right_eye,
                     [nose_x[tip].mean(), nose_y[tip].mean()],
                     [mouth_x[left].mean(), mouth_y[left].mean()],
                     [mouth_x[right].mean(), mouth_y[right].mean()]])


def median_framing(points: list) -> dict | None:
    """The manifest's ``framing`` from per-record points: the per-point median."""
    measured = [p for p in points if p is not None]
    if not measured:
        return None
    median = np.median(np.asarray(measured, np.float64), axis=0)
    return {"mode": "measured", "points": np.round(median, 2).tolist(), "records": len(measured)}
