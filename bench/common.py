"""Shared by the benchmarks: a cached Kaggle-layout set of large synthetic photos, a
real face as a sprite, and the mtcnn package's own pipeline as a detector."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from facepars.core.classes import translate_ids
from facepars.data import synthetic
from facepars.faces import detection

WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_work")


def make_source(root: str, pairs: int) -> str:
    """Large Kaggle-layout pairs, drawn at half size and upscaled (drawing is not measured)."""
    image_dir = os.path.join(root, "content/All_data/train/image")
    seg_dir = os.path.join(root, "content/All_data/train/seg")
    if os.path.isdir(image_dir) and len(os.listdir(image_dir)) >= pairs:
        return root
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(seg_dir, exist_ok=True)
    synthetic_to_kaggle = translate_ids("synthetic", "kaggle")
    rng = np.random.default_rng(0)
    for i in range(pairs):
        long_side = int(rng.uniform(1000, 1500))
        short_side = int(long_side * rng.uniform(0.66, 0.8))
        h, w = (long_side, short_side) if i % 2 else (short_side, long_side)
        image, mask = synthetic.render(7, i, h // 2, w // 2)
        Image.fromarray(image).resize((w, h), Image.BICUBIC).save(
            f"{image_dir}/{i:04d}_0001.jpg", quality=92)
        Image.fromarray(synthetic_to_kaggle[mask]).resize((w, h), Image.NEAREST).save(
            f"{seg_dir}/{i:04d}_0001.png")
        if i % 20 == 0:
            print(f"  generated {i}/{pairs} source pairs", flush=True)
    return root


def confusion(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix of two label maps on the host (truth pixels >= num_classes skipped)."""
    valid = truth < num_classes
    index = truth[valid].astype(np.int64) * num_classes + predicted[valid]
    return np.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def astronaut_sprite():
    """The astronaut's head as a sprite (synthetic.moving_faces): a real face MTCNN
    finds wherever it is put."""
    import skimage.data
    photo = skimage.data.astronaut()
    side = 200
    image = photo[20:20 + side, 140:140 + side]
    yy, xx = np.mgrid[:side, :side]
    mask = (((xx - side / 2) / 90) ** 2 + ((yy - side / 2) / 98) ** 2 < 1).astype(np.uint8)
    return image, mask, np.zeros((5, 2))


# mtcnn's keypoint names, in facepars's landmark order (its "left" is the image's left).
_PACKAGE_POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class PackageMTCNN:
    """The mtcnn package's own pipeline (stages run from Python, numpy between them)
    as a facepars detector: what predict ran before facepars.faces.mtcnn_graph, the
    baseline of the speed benches."""

    def __init__(self):
        from mtcnn import MTCNN
        self.mtcnn = MTCNN()

    def __call__(self, photo: np.ndarray) -> list:
        faces = []
        for found in self.mtcnn.detect_faces(np.ascontiguousarray(photo[..., :3])):
            x, y, w, h = (float(v) for v in found["box"])
            points = np.array([found["keypoints"][k] for k in _PACKAGE_POINTS], np.float64)
            faces.append(detection.Face((x, y, x + w, y + h), points, float(found["confidence"])))
        return faces
