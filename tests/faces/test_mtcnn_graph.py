"""facepars.faces.mtcnn_graph against the mtcnn package it re-writes as graph ops.

The reference is the package's own pipeline on the same pixels (its unrounded
numpy output). The only differences left are float32 where the package computes
in float64 (its normalised image): they move boxes and points by about 1e-4 px and
scores by 1e-7, and the test allows 0.01 px and 1e-4. A stage's box convention
off by one pixel, a point offset, a skipped suppression or a wrong pyramid fails it.
"""


import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from mtcnn import MTCNN
from mtcnn.utils.bboxes import smart_nms_from_bboxes
from PIL import Image

from facepars.core import imaging
from facepars.data import synthetic
from facepars.faces import mtcnn_graph
from facepars.inference import serving


@pytest.fixture(scope="module")
def detect():
    cascade = mtcnn_graph.Cascade()
    return tf.function(cascade.detect, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])


def _rotated_jpeg(tmp_path) -> str:
    """The astronaut stored on its side with EXIF orientation 6 (a phone's portrait)."""
    path = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(skimage.data.astronaut(), 1)).save(path, exif=exif, quality=95)
    return str(path)


def _photos(tmp_path) -> dict:
    """Photos with one face, two, none; odd sizes; one EXIF-rotated (read upright)."""
    astronaut = skimage.data.astronaut()
    rotated = _rotated_jpeg(tmp_path)
    with open(rotated, "rb") as f:
        upright = serving.decode_photo(tf.constant(f.read())).numpy()
    return {
        "astronaut": astronaut,
        "group of two": synthetic.compose(3, 0, 480, 640, 3)[0],
        "group of one": synthetic.compose(3, 5, 480, 640, 3)[0],
        "another group of two": synthetic.compose(3, 8, 480, 640, 3)[0],
        "odd size": np.ascontiguousarray(astronaut[31:364, 7:500]),
        "close-up": np.ascontiguousarray(astronaut[45:195, 170:320]),  # the last level's
        "tall": synthetic.compose(7, 3, 700, 300, 2)[0],
        "no face": skimage.data.coffee(),
        "noise": np.random.default_rng(0).integers(0, 256, (240, 320, 3), np.uint8),
        "below the smallest window": astronaut[:11, :30],
        "EXIF-rotated": (upright, imaging.read_image(rotated, apply_exif=True)[0]),
    }


def test_the_cascade_finds_the_faces_the_package_finds(detect, tmp_path):
    counts, package = {}, MTCNN()
    for name, photo in _photos(tmp_path).items():
        ours, theirs = photo if isinstance(photo, tuple) else (photo, photo)
        reference = package.detect_faces(theirs, output_type="numpy", box_format="xyxy")
        reference = reference[np.argsort(-reference[:, 5], kind="stable")]
        boxes, points, scores = (t.numpy() for t in detect(ours))
        order = np.argsort(-scores, kind="stable")
        counts[name] = len(scores)
        assert len(scores) == len(reference), name
        if not len(reference):
            continue
        np.testing.assert_allclose(boxes[order], reference[:, 1:5], atol=0.01, err_msg=name)
        np.testing.assert_allclose(points[order], np.stack([reference[:, 6:11],
                                                            reference[:, 11:16]], 2),
                                   atol=0.01, err_msg=name)
        np.testing.assert_allclose(scores[order], reference[:, 5], atol=1e-4, err_msg=name)
    # What the photos hold, so the comparison is not of empty lists.
    assert counts["astronaut"] == counts["EXIF-rotated"] == counts["odd size"] == 1
    assert counts["close-up"] == 1
    assert counts["group of two"] == counts["another group of two"] == 2
    assert counts["no face"] == counts["below the smallest window"] == 0


def test_suppression_keeps_what_the_packages_rule_keeps():
    """The package drops a box that any better one overlaps, even one itself dropped
    (not the greedy rule): over random boxes, and a chain where the rules differ."""
    rng = np.random.default_rng(1)
    for over, threshold in (("union", 0.5), ("union", 0.7), ("min", 0.7)):
        for _ in range(20):
            corner = rng.uniform(0, 200, (60, 2))
            boxes = np.concatenate([corner, corner + rng.uniform(10, 60, (60, 2))], 1)
            scores = rng.uniform(0.5, 1.0, 60)
            reference = smart_nms_from_bboxes(
                np.concatenate([np.zeros((60, 1)), boxes, scores[:, None]], 1),
                threshold, method=over, initial_sort=True)
            kept = mtcnn_graph.suppress(tf.constant(boxes), tf.constant(scores), threshold, over)
            np.testing.assert_array_equal(boxes[kept.numpy()], reference[:, 1:5])
    # A overlaps B, B overlaps C, A does not overlap C: greedy keeps A and C.
    chain = np.array([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], np.float64)
    kept = mtcnn_graph.suppress(tf.constant(chain), tf.constant([0.9, 0.8, 0.7]), 0.3)
    assert kept.numpy().tolist() == [0]
