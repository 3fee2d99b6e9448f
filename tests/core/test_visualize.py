import io

import matplotlib
import numpy as np
from PIL import Image

from facepars.core import classes, visualize


def _colour_at(picture, colour, tolerance=2):
    """(pixels within ``tolerance`` of ``colour``, their median row and column)."""
    close = np.abs(picture[..., :3].astype(int) - colour).max(-1) <= tolerance
    ys, xs = np.nonzero(close)
    return len(ys), np.array([np.median(ys), np.median(xs)]) if len(ys) else None


def test_the_confusion_picture_shows_each_rows_shares_in_place_on_the_blues_scale():
    """Each cell is painted with matplotlib's Blues (the independent reference) at
    its row-normalised share, rows the true class in order, columns the predicted
    one; a class without pixels is a row of zero shares with nothing written in it.
    A transposed matrix, shares of the total or of the column, another scale or a
    NaN row would put a colour elsewhere or nowhere."""
    names = ("background", "skin", "a long class name")
    table = classes.ClassTable("test", names, classes.distinct_colors(3), (1, 2))
    counts = np.array([[70, 20, 10], [3, 48, 9], [0, 0, 0]])
    shares = np.array([[0.7, 0.2, 0.1], [0.05, 0.8, 0.15], [0, 0, 0]])
    picture = np.asarray(Image.open(io.BytesIO(visualize.confusion_png(counts, table, "t"))))
    reference = np.round(matplotlib.colormaps["Blues"](shares)[..., :3] * 255)

    centres, sizes = np.zeros((2, 3, 2)), np.zeros((2, 3))
    for i in range(2):
        for j in range(3):
            sizes[i, j], centres[i, j] = _colour_at(picture, reference[i, j])
            assert sizes[i, j] >= 500, (i, j, shares[i, j], sizes[i, j])  # a cell, not specks
    assert np.ptp(centres[:, :, 0], axis=1).max() <= 2, centres  # a row at one height
    assert np.ptp(centres[:, :, 1], axis=0).max() <= 2, centres  # a column at one place
    step = centres[1, 0, 0] - centres[0, 0, 0]
    assert step > 20 and np.all(np.diff(centres[0, :, 1]) > 20), centres
    empty, centre = _colour_at(picture, reference[2, 0])
    np.testing.assert_allclose(centre, [centres[1, 1, 0] + step, centres[1, 1, 1]], atol=3)
    assert empty >= 3 * sizes.max()  # three cells, no share written in them
