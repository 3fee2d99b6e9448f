"""A face parser of known output, for tests of everything around the network.

The "network" reads the class from the pixel colour: test pictures are painted
with class c's three bits as the R, G, B channels, each 0 or 255, and a bilinear
blend of two classes thresholds to one of them in every channel at once. So it
parses perfectly in any geometry, and a test built on it measures only the path
around it (alignment, warping back, merging, tracking, video frames).
"""

import numpy as np
import tensorflow as tf

from facepars.core.classes import SOURCE_TABLES, TAXONOMIES
from facepars.data import framing, synthetic
from facepars.inference.predictor import Predictor
from facepars.models.rundir import ModelCard

TABLE = TAXONOMIES["seed8"].table
BITS = np.array([1, 2, 4])
# The synthetic source's ids -> TABLE's classes.
SYNTHETIC_LUT, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES["seed8"])


def paint(labels):
    return ((labels[..., None] & BITS) > 0).astype(np.uint8) * 255


def colour_parser(x):
    classes = tf.reduce_sum(tf.cast(x > 0.5, tf.int32) * BITS, -1)
    return tf.one_hot(classes, TABLE.num_classes) * 20.0


def colour_predictor(points):
    """A Predictor over the colour parser whose training framing is ``points``."""
    card = ModelCard(TABLE, 128, "stretch", framing={"points": np.asarray(points).tolist()})
    return Predictor(colour_parser, card)


def synthetic_framing():
    """The synthetic set's framing, measured from masks as prepare measures it."""
    classes = framing.FramingClasses.of(TABLE)
    points = [framing.points_from_mask(SYNTHETIC_LUT[synthetic.render(0, i, 128, 128)[1]],
                                       classes) for i in range(40)]
    return np.array(framing.median_framing(points)["points"])


def group_photo(seed, height, width, faces):
    """A painted group photo (facepars.data.synthetic.compose): photo, labels, five points."""
    _, raw, landmarks, _ = synthetic.compose(seed, 0, height, width, faces)
    labels = SYNTHETIC_LUT[raw]
    return paint(labels), labels, landmarks
