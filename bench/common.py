"""Shared by the benchmarks: a cached Kaggle-layout set of large synthetic photos."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from facepars.classes import translate_ids
from facepars.data import synthetic

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
