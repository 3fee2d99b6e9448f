"""facepars.faces.detection around MTCNN: what it does to the photo and to what MTCNN returns."""

import numpy as np
import skimage.data
from PIL import Image

from facepars.faces import detection
from facepars.faces.alignment import rescale


def test_a_photo_searched_downscaled_gives_boxes_and_points_in_its_own_pixels():
    """A photo longer than max_side (the astronaut at 2,560 px) is searched at
    2,000 px; its box and five points come back in the photo's own pixels, within
    2 px of the 512 px photo's scaled up (a detection at another scale moves that
    much). Left at the search scale they land 22 % too close to the origin."""
    detector = detection.MTCNNDetector()
    photo = skimage.data.astronaut()
    (small,) = detection.find(detector, photo)
    (large,) = detection.find(detector, np.asarray(Image.fromarray(photo).resize((2560, 2560))))
    np.testing.assert_allclose(large.landmarks, rescale(small.landmarks, 5.0), atol=10.0)
    np.testing.assert_allclose(large.box, np.array(small.box) * 5, atol=12.0)  # of ~500 px


def test_relocate_finds_a_moved_face_where_a_full_detection_finds_it():
    """MTCNN's last stage on the old box, for tracking: on the astronaut moved by
    (-7, 5) px (a fifth of the eye distance: a fast head at 30 fps) it gives the
    points a full detection gives on the moved photo, within 2 px (full runs
    round to whole pixels and move 1-2 px themselves when the photo shifts), in a
    2,600 px photo too (searched downscaled), and a score near 0 where the face
    was painted over."""
    detector = detection.MTCNNDetector()
    photo = np.pad(skimage.data.astronaut(), ((40, 40), (40, 40), (0, 0)), mode="edge")
    moved = np.roll(photo, (5, -7), axis=(0, 1))
    for scale in (1, 5):
        a, b = (np.asarray(Image.fromarray(p).resize((p.shape[1] * scale,) * 2))
                if scale > 1 else p for p in (photo, moved))
        before, after = detector(a)[0], detector(b)[0]
        again = detector.relocate(b, [before])[0]
        assert again.score > 0.99
        np.testing.assert_allclose(again.landmarks, after.landmarks, atol=2.0 * scale)
        np.testing.assert_allclose(again.box, after.box, atol=6.0 * scale)  # of ~100 px
    x0, y0, x1, y1 = (int(v) for v in after.box)
    covered = b.copy()
    covered[y0:y1, x0:x1] = 128
    assert detector.relocate(covered, [after])[0].score < 0.5
    assert detector.relocate(b, []) == []


def test_relocate_is_mtcnns_own_last_stage_on_the_box_it_is_given():
    """The reference: mtcnn's own pipeline with its first two stages replaced by a
    stage that proposes the given box (its public stages API), then its ONet stage;
    the points, box and score agree to float precision (a pixel-centre offset, a
    different normalisation or crop convention would not)."""
    from mtcnn import MTCNN
    from mtcnn.stages import StageONet

    detector = detection.MTCNNDetector()
    photo = skimage.data.astronaut()
    box = (185.5, 60.0, 305.5, 180.0)  # square, around the face

    def given_box(bboxes_batch, images_normalized, images_oshapes, **kwargs):
        return np.array([[0, *box, 1.0]])

    reference = MTCNN(stages=[given_box, StageONet]).detect_faces(
        photo, output_type="numpy", box_format="xyxy", threshold_onet=0.0)
    (face,) = detector.relocate(photo, [detection.Face(box, np.zeros((5, 2)))])
    np.testing.assert_allclose(face.box, reference[0, 1:5], atol=1e-3)
    np.testing.assert_allclose(face.score, reference[0, 5], atol=1e-5)
    np.testing.assert_allclose(face.landmarks, np.stack([reference[0, 6:11], reference[0, 11:16]],
                                                        1), atol=1e-3)
