"""Five-point alignment against independent references: least squares and marker dots."""

import numpy as np
import pytest

from facepars.core import imaging
from facepars.faces import alignment

TEMPLATE = np.array([[49.0, 56.5], [79.0, 56.5], [64.0, 71.5], [55.0, 90.1], [73.0, 90.1]])


def _lstsq_similarity(source, target):
    """Reference: x' = a x - b y + tx, y' = b x + a y + ty solved as a linear system."""
    rows, values = [], []
    for (x, y), (u, v) in zip(source, target):
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        values += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(values), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def test_similarity_is_the_least_squares_fit_and_never_reflects():
    rng = np.random.default_rng(0)
    for _ in range(20):
        source = rng.uniform(0, 500, (5, 2))
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.1, 3)
        truth = np.array([[scale * np.cos(angle), -scale * np.sin(angle), rng.uniform(-50, 50)],
                          [scale * np.sin(angle), scale * np.cos(angle), rng.uniform(-50, 50)]])
        target = imaging.apply(truth, source)
        np.testing.assert_allclose(alignment.similarity(source, target), truth, atol=1e-8)
        noisy = target + rng.normal(0, 3, target.shape)
        np.testing.assert_allclose(alignment.similarity(source, noisy),
                                   _lstsq_similarity(source, noisy), atol=1e-8)
    # Mirrored points: the fit stays a rotation (determinant > 0), never a reflection.
    mirrored = TEMPLATE * [-1, 1]
    assert np.linalg.det(alignment.similarity(TEMPLATE, mirrored)[:, :2]) > 0


@pytest.mark.parametrize("photo_size,face_scale,within", [(300, 1.0, 0.75), (2400, 0.06, 0.2)])
def test_the_crop_puts_the_five_points_on_the_template(photo_size, face_scale, within):
    """Bright dots at a face's five points land on the template's pixels in the crop,
    for a small face (measured within 0.54 px) and for one 16x larger than the crop
    (the area-averaged path, within 0.03 px: a dropped half-block offset there moves
    them about half a crop pixel). A matrix used the wrong way round lands them
    elsewhere. A dot is the block of pixels around ``floor(point)``, so that is
    the point aligned."""
    rng = np.random.default_rng(1)
    angle = 0.4
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (TEMPLATE - 64) @ rot.T / face_scale * 0.8 + photo_size / 2 + rng.uniform(-20, 20, 2)
    photo = np.zeros((photo_size, photo_size, 3), np.uint8)
    radius = max(2, int(2 / face_scale))
    for x, y in points:
        photo[int(y) - radius:int(y) + radius + 1, int(x) - radius:int(x) + radius + 1] = 255
    matrix = alignment.similarity(np.floor(points), TEMPLATE)
    crop = imaging.warp(photo, matrix, 128, nearest=False, fill=(0, 0, 0))[..., 0]
    crop = crop.astype(np.float64)
    for x, y in TEMPLATE:
        y0, x0 = int(y) - 5, int(x) - 5
        patch = crop[y0:y0 + 11, x0:x0 + 11]
        assert patch.sum() > 0, (x, y)
        yy, xx = np.mgrid[y0:y0 + 11, x0:x0 + 11]
        centre = np.array([(xx * patch).sum(), (yy * patch).sum()]) / patch.sum()
        assert np.abs(centre - [x, y]).max() < within, (centre, (x, y))
