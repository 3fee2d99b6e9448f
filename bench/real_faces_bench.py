"""Does a model trained only on synthetic faces parse real ones? A rule per face.

    python bench/real_faces_bench.py --model_path=demo_output/model [--out FIG.png]

The real faces the installed packages carry: scikit-image's astronaut (Eileen
Collins), matplotlib's sample photo of Grace Hopper, and scikit-image's LFW
subset (100 faces of 25 x 25 px, upscaled 4x). MTCNN finds each photo's faces;
the largest is parsed as ``predict`` parses it (aligned on its five points), and
the parse passes when, against the five points MTCNN gives:

  each eye point lies within 3 px of a pixel labelled eyes,
  the nose point within 3 px of a nose pixel (on it, allowing MTCNN's own spread),
  both mouth corners within 3 px of mouth pixels,
  skin covers at least half of the face box.

It prints each named photo's checks with how far each is from passing (the
keypoints' distance to their class, skin's share of the box: these move before
a check flips, so changes can be compared), how many faces pass each check alone
and all four, and draws the named photos' overlays into ``--out``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.cbook
import numpy as np
import scipy.ndimage
import skimage.data
from PIL import Image

from facepars.core import visualize
from facepars.faces import detection
from facepars.inference.predictor import Predictor


def photos():
    """(name, photo) for every real face photo the installed packages ship."""
    yield "astronaut", skimage.data.astronaut()
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        yield "grace_hopper", np.asarray(Image.open(f).convert("RGB"))
    lfw = skimage.data.lfw_subset()[:100]  # the first 100 are faces
    for i, face in enumerate(lfw):
        grey = (face * 255).astype(np.uint8)
        yield f"lfw_{i:03d}", np.asarray(Image.fromarray(grey).resize((100, 100),
                                                                      Image.BICUBIC).convert("RGB"))


WITHIN = 3.0  # px from a keypoint to the nearest pixel of its class
SKIN = 0.5    # the least fraction of the face box labelled skin


def measure(labels: np.ndarray, face: detection.Face, table) -> dict[str, float]:
    """How far the parse is from each check: the farthest keypoint of each part from
    a pixel of its class (px; inf when the class is absent), and skin's share of the
    face box. These move before the pass/fail does, so changes can be compared."""
    def distance(name, points):
        absent = labels != table.names.index(name)
        if absent.all():
            return float("inf")
        field = scipy.ndimage.distance_transform_edt(absent)
        xy = np.clip(np.round(points).astype(int), 0, [labels.shape[1] - 1, labels.shape[0] - 1])
        return float(field[xy[:, 1], xy[:, 0]].max())

    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    box = labels[max(y0, 0):y1, max(x0, 0):x1]
    return {"eyes": distance("eyes", face.landmarks[:2]),
            "nose": distance("nose", face.landmarks[2:3]),
            "mouth": distance("mouth", face.landmarks[3:]),
            "skin": float((box == table.names.index("skin")).mean()) if box.size else 0.0}


def check(measured: dict[str, float]) -> dict[str, bool]:
    """The rule's four checks, from ``measure``."""
    return {name: (value >= SKIN if name == "skin" else value <= WITHIN)
            for name, value in measured.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", default="demo_output/model")
    parser.add_argument("--out", default=os.path.join("docs", "images", "real_faces.png"))
    args = parser.parse_args()
    predictor = Predictor.load(args.model_path)
    detector = detection.MTCNNDetector()
    table = predictor.table
    passed, found, total, pictures = 0, 0, 0, []
    per_check = dict.fromkeys(("eyes", "nose", "mouth", "skin"), 0)
    for name, photo in photos():
        total += 1
        faces = detection.find(detector, photo, detection.FaceFilter(
            min_face=12 if name.startswith("lfw") else 20))
        if not faces:
            if not name.startswith("lfw"):
                print(f"{name}: no face found")
            continue
        found += 1
        face = max(faces, key=lambda f: f.width)
        labels = predictor.predict_faces(photo, [face]).labels
        measured = measure(labels, face, table)
        checks = check(measured)
        passed += all(checks.values())
        for name_, ok in checks.items():
            per_check[name_] += ok
        if not name.startswith("lfw"):
            print(f"{name}: {'pass' if all(checks.values()) else 'FAIL'}; " + ", ".join(
                f"{k} {'ok' if checks[k] else 'no'} ({v:.2f}{'' if k == 'skin' else ' px'})"
                for k, v in measured.items()))
            picture = visualize.draw_boxes(visualize.overlay(photo, labels, table), [face.box])
            height = 360
            pictures.append(np.asarray(Image.fromarray(picture).resize(
                (int(picture.shape[1] * height / picture.shape[0]), height))))
    print(f"{passed} of {found} faces found pass the rule ({total} photos; MTCNN found "
          f"a face in {found}); each check alone: "
          + ", ".join(f"{k} {v}" for k, v in per_check.items()))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    Image.fromarray(np.concatenate(pictures, 1)).save(args.out)
    print(f"picture: {args.out}")


if __name__ == "__main__":
    main()
