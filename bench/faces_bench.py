"""Whole photos: detect-and-align against whole-photo resizing and against the same faces as crops.

    python bench/faces_bench.py --model_path=demo_output/model [--photos 300] [--out FIG.png]

Composes ``--photos`` synthetic group photos at 480x640, each with 2-4 faces of
15-40 % of the photo width, rotated, some mirrored, with exact masks and exact
landmarks (facepars.data.synthetic.compose), and scores the face-class mIoU (one
confusion matrix over all photos, at the photos' resolution) of

  crops   each face as rendered alone, the kind of picture the model trained on:
          through ``Predictor.predict``, or for a model trained on aligned crops
          (``prepare --align``) aligned on its exact five points;
  detect  the group photos as ``predict --faces=detect`` parses them: the faces
          MTCNN finds, aligned, parsed, warped back and merged
          (``Predictor.predict_faces``), and MTCNN's recall (a face counts as
          found when a box holds its eyes' midpoint);
  exact   as detect, with the faces' exact five points instead of MTCNN's: the
          alignment, warp-back and merge alone;
  whole   the group photos resized whole into the network (``Predictor.predict``).

It prints the scores and the ratios detect / crops (target >= 0.9), exact /
crops and whole / crops, and draws one photo's overlays under detect and whole
into ``--out``. ``--singles N`` also counts MTCNN's recall on N single faces
drawn as ``prepare`` draws them (``--synthetic_size`` 200, the demo's). Needs the detect extra. The
model must come from data prepared by this facepars (its manifest's framing).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import scipy.stats
from PIL import Image

from facepars.core import visualize
from facepars.core.classes import SOURCE_TABLES, TAXONOMIES
from facepars.data import synthetic
from facepars.data.convert import ALIGNED_MODES
from facepars.faces import detection
from facepars.inference.predictor import Predictor
from facepars.training.metrics import scores_from_confusion

from common import confusion


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", default="demo_output/model")
    # 300 photos hold about 420 faces (150 s on 2 cores), a face 0.24 points of
    # MTCNN's recall; on 40 (58 faces) it was 1.7, too coarse for a 95 % target.
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=os.path.join("docs", "images", "whole_photos.png"))
    parser.add_argument("--singles", type=int, default=0)
    args = parser.parse_args()

    predictor = Predictor.load(args.model_path)
    table = predictor.table
    lut, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES[table.name])
    n = table.num_classes
    detector = detection.MTCNNDetector()
    aligned = predictor.card.framing["mode"] in ALIGNED_MODES
    kinds = ("crops", "detect", "exact", "whole")
    totals = {k: np.zeros((n, n), np.int64) for k in kinds}
    faces_seen, found, example = 0, 0, None
    for i in range(args.photos):
        rng = np.random.default_rng([args.seed, i])
        photo, raw, landmarks, crops = synthetic.compose(args.seed, i, 480, 640,
                                                         int(rng.integers(2, 5)))
        truth = lut[raw]
        detected = detection.find(detector, photo)
        found += sum(any(detection.contains(f, p[:2].mean(0)) for f in detected)
                     for p in landmarks)
        detect = predictor.predict_faces(photo, detected)
        exact = predictor.predict_faces(photo, [detection.from_landmarks(p) for p in landmarks])
        whole = predictor.predict(photo)
        totals["detect"] += confusion(truth, detect.labels, n)
        totals["exact"] += confusion(truth, exact.labels, n)
        totals["whole"] += confusion(truth, whole.labels, n)
        for image, mask, points in crops:
            crop = predictor.predict_faces(image, [detection.from_landmarks(points)]) \
                if aligned else predictor.predict(image)
            totals["crops"] += confusion(lut[mask], crop.labels, n)
        faces_seen += len(landmarks)
        # The picture: the photo with the most faces, all of them found.
        if example is None or len(detected) == len(landmarks) > len(example[1].faces):
            example = (photo, detect, whole)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{args.photos} photos, {faces_seen} faces", flush=True)

    scores = {k: scores_from_confusion(c, table)["iou/mean_face"] for k, c in totals.items()}
    print(f"{args.photos} group photos, {faces_seen} faces; MTCNN found {found} "
          f"({interval(found, faces_seen)}); face-class mIoU:")
    for k, v in scores.items():
        print(f"  {k:7s} {v:.4f}")
    print(f"ratio detect / crops: {scores['detect'] / scores['crops']:.3f}  (target >= 0.9)")
    print(f"ratio exact / crops:  {scores['exact'] / scores['crops']:.3f}")
    print(f"ratio whole / crops:  {scores['whole'] / scores['crops']:.3f}")

    if args.singles:
        found = singles_found(detector, args.seed, args.singles)
        print(f"MTCNN found {found} of {args.singles} single faces "
              f"({interval(found, args.singles)}; seed {args.seed}, drawn at ~200 px)")

    if example is not None:
        photo, detect, whole = example
        left = visualize.draw_boxes(visualize.overlay(photo, detect.labels, table),
                                    [f.box for f in detect.faces])
        right = visualize.overlay(photo, whole.labels, table)
        gap = np.full((photo.shape[0], 8, 3), 255, np.uint8)
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        Image.fromarray(np.concatenate([photo, gap, left, gap, right], 1)).save(args.out)
        print(f"picture (photo | --faces=detect | --faces=whole): {args.out}")


def interval(found: int, total: int) -> str:
    """The share found and its 95 % (Wilson score) interval: on 58 faces one face
    is 1.7 points, so a recall near a target needs its interval beside it."""
    if not total:
        return "no faces"
    low, high = scipy.stats.binomtest(found, total).proportion_ci(method="wilson")
    return f"{found / total:.1%}, 95 % interval {low:.1%}-{high:.1%}"


def singles_found(detector, seed: int, count: int) -> int:
    """How many of ``count`` faces, each alone in its photo, MTCNN finds (a box
    holding the eyes' midpoint): the test split's faces, without a trained model."""
    found = 0
    for i in range(count):
        height, width = synthetic.size_for(seed, i, 200)
        photo, _, points = synthetic.render_with_landmarks(seed, i, height, width)
        found += any(detection.contains(f, points[:2].mean(0))
                     for f in detection.find(detector, photo))
    return found


if __name__ == "__main__":
    main()
