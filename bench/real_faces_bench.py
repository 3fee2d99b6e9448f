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

It prints each named photo's checks and how many faces pass, and draws the
named photos' overlays into ``--out``.
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

from facepars import detection, visualize
from facepars.inference import Predictor


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


def check(labels: np.ndarray, face: detection.Face, table) -> dict[str, bool]:
    """The rule's four checks for one face's parse."""
    def near(name, point, within=3.0):
        ids = table.names.index(name)
        distance = scipy.ndimage.distance_transform_edt(labels != ids)
        x, y = np.clip(np.round(point).astype(int), 0, [labels.shape[1] - 1, labels.shape[0] - 1])
        return bool(distance[y, x] <= within)

    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    box = labels[max(y0, 0):y1, max(x0, 0):x1]
    eyes, nose, mouth = face.landmarks[:2], face.landmarks[2], face.landmarks[3:]
    return {"eyes": all(near("eyes", p) for p in eyes), "nose": near("nose", nose),
            "mouth": all(near("mouth", p) for p in mouth),
            "skin": bool((box == table.names.index("skin")).mean() >= 0.5) if box.size else False}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", default="demo_output/model")
    parser.add_argument("--out", default=os.path.join("docs", "images", "real_faces.png"))
    args = parser.parse_args()
    predictor = Predictor.load(args.model_path)
    detector = detection.MTCNNDetector()
    table = predictor.table
    passed, found, total, pictures = 0, 0, 0, []
    for name, photo in photos():
        total += 1
        faces = detection.find(detector, photo, min_size=12 if name.startswith("lfw") else 20)
        if not faces:
            if not name.startswith("lfw"):
                print(f"{name}: no face found")
            continue
        found += 1
        face = max(faces, key=lambda f: f.width)
        labels = predictor.predict_faces(photo, [face]).labels
        checks = check(labels, face, table)
        passed += all(checks.values())
        if not name.startswith("lfw"):
            print(f"{name}: {'pass' if all(checks.values()) else 'FAIL'} "
                  + ", ".join(f"{k} {'ok' if v else 'no'}" for k, v in checks.items()))
            picture = visualize.draw_boxes(visualize.overlay(photo, labels, table), [face.box])
            height = 360
            pictures.append(np.asarray(Image.fromarray(picture).resize(
                (int(picture.shape[1] * height / picture.shape[0]), height))))
    print(f"{passed} of {found} faces found pass the rule ({total} photos; MTCNN found "
          f"a face in {found})")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    Image.fromarray(np.concatenate(pictures, 1)).save(args.out)
    print(f"picture: {args.out}")


if __name__ == "__main__":
    main()
