"""facepars.detection around MTCNN: what it does to the photo and to what MTCNN returns."""

import numpy as np

from facepars import detection


class _CentroidFinder:
    """A stand-in for mtcnn.MTCNN: one "face", the bright square of the image it is
    given, with all five keypoints at the square's centroid and its bounding box."""

    def __init__(self):
        self.seen = []

    def detect_faces(self, image):
        self.seen.append(image.shape)
        ys, xs = np.nonzero(image[..., 0] > 127)
        centre = (float(xs.mean()), float(ys.mean()))
        return [{"box": [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()],
                 "keypoints": {k: centre for k in detection._MTCNN_POINTS},
                 "confidence": 0.99}]


def test_a_photo_searched_downscaled_gives_boxes_and_points_in_its_own_pixels():
    """A 6000 x 4000 photo is searched at 2000 px; box and five points come back in
    the photo's pixels (pixel centres at whole numbers), within a pixel of where the
    square really is. Points left at the search scale land 3x too close to the
    origin."""
    photo = np.zeros((4000, 6000, 3), np.uint8)
    photo[2400:2700, 3000:3300] = 255  # centre (3149.5, 2549.5), edges 3000..3300
    detector = detection.MTCNNDetector.__new__(detection.MTCNNDetector)
    detector._mtcnn = _CentroidFinder()
    (face,) = detector(photo)
    assert detector._mtcnn.seen == [(1333, 2000, 3)]
    np.testing.assert_allclose(face.landmarks, [[3149.5, 2549.5]] * 5, atol=1.0)
    np.testing.assert_allclose(face.box, (3000, 2400, 3300, 2700), atol=3.0)
    small = np.zeros((300, 400, 3), np.uint8)
    small[100:140, 200:260] = 255
    (face,) = detector(small)  # no downscale below max_side
    np.testing.assert_allclose(face.landmarks, [[229.5, 119.5]] * 5, atol=1e-6)
