"""Raw datasets written in each source's published layout, for converter tests.

Faces come from the synthetic renderer, relabelled into the source's raw ids.
Every fixture mask also carries a band with a block of every raw id of its
source, so every entry of every table is exercised on its way to a record.
The raw-id tables here are written out from docs/data.md on purpose, independent
of facepars.core.classes, so the tests check the package against the published facts.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from facepars.data import synthetic

# Published raw ids, by the synthetic renderer's part names.
KAGGLE_IDS = dict(background=0, skin=1, l_brow=2, r_brow=3, l_eye=4, r_eye=5, nose=6,
                  l_lip=7, inner_mouth=8, u_lip=9, hair=10, l_ear=13, r_ear=14,
                  glasses=16, occluder=0, neck=0, cloth=0)
KAGGLE_NUM_IDS = 18
LAPA_IDS = dict(background=0, skin=1, l_brow=2, r_brow=3, l_eye=4, r_eye=5, nose=6,
                u_lip=7, inner_mouth=8, l_lip=9, hair=10, l_ear=1, r_ear=1,
                glasses=0, occluder=0, neck=0, cloth=0)
LAPA_NUM_IDS = 11
CELEBA_PARTS = ["skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
                "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l",
                "neck", "cloth"]
CELEBA_OF_SYNTHETIC = dict(skin="skin", nose="nose", glasses="eye_g", l_eye="l_eye",
                           r_eye="r_eye", l_brow="l_brow", r_brow="r_brow", l_ear="l_ear",
                           r_ear="r_ear", inner_mouth="mouth", u_lip="u_lip",
                           l_lip="l_lip", hair="hair")

# docs/data.md's seed merge, raw Kaggle id -> seed8 id.
SEED_MERGE = {0: 0, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 5, 8: 5, 9: 5, 10: 0,
              11: 1, 12: 1, 13: 6, 14: 6, 15: 0, 16: 7, 17: 0}
SYNTHETIC_PARTS = ["background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose",
                   "u_lip", "l_lip", "inner_mouth", "hair", "l_ear", "r_ear", "glasses",
                   "occluder", "neck", "cloth"]


def face(index: int, height: int, width: int, glasses: bool = True):
    """A synthetic face (image, mask in synthetic part names' ids) with glasses."""
    return face_with_landmarks(index, height, width, glasses)[:2]


def face_with_landmarks(index: int, height: int, width: int, glasses: bool = True):
    """``face`` and its exact five points."""
    for attempt in range(50):
        image, mask, points = synthetic.render_with_landmarks(1000 + index, attempt, height, width)
        if not glasses or (mask == SYNTHETIC_PARTS.index("glasses")).any():
            return image, mask, points
    raise AssertionError("no face with glasses in 50 tries")


def write_lapa_landmarks(path, five):
    """A LaPa landmark file: 106 points, the five alignment uses at their indices."""
    points = np.zeros((106, 2))
    points[[104, 105, 54, 84, 90]] = five
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("106\n" + "\n".join(f"{x:.3f} {y:.3f}" for x, y in points) + "\n")


def relabel(mask: np.ndarray, ids: dict, num_ids: int) -> np.ndarray:
    lut = np.array([ids[p] for p in SYNTHETIC_PARTS], np.uint8)
    out = lut[mask]
    band = out[-max(4, out.shape[0] // 20):]  # a block of every raw id
    for i, cols in enumerate(np.array_split(np.arange(out.shape[1]), num_ids)):
        band[:, cols] = i
    return out


def _save(array, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def write_kaggle(root, splits=(("train", 4), ("val", 2)), size=(300, 220)):
    """content/All_data/{train,val}/{image,seg}; alternate portrait and landscape."""
    n = 0
    for split, count in splits:
        for i in range(count):
            h, w = size if n % 2 == 0 else size[::-1]
            image, mask = face(n, h, w)
            name = f"{n:04d}_0001"
            _save(image, f"{root}/content/All_data/{split}/image/{name}.jpg")
            _save(relabel(mask, KAGGLE_IDS, KAGGLE_NUM_IDS),
                  f"{root}/content/All_data/{split}/seg/{name}.png")
            n += 1
    return f"{root}/content/All_data"


def write_lapa(root, splits=(("train", 3), ("val", 2), ("test", 2)), size=(260, 200),
               landmarks=False):
    n = 0
    for split, count in splits:
        for i in range(count):
            image, mask, five = face_with_landmarks(n, *size)
            if landmarks:
                write_lapa_landmarks(f"{root}/{split}/landmarks/lapa_{n}.txt", five)
            _save(image, f"{root}/{split}/images/lapa_{n}.jpg")
            _save(relabel(mask, LAPA_IDS, LAPA_NUM_IDS), f"{root}/{split}/labels/lapa_{n}.png")
            n += 1


def write_celebamask_hq(root, count=6, mask_size=128):
    """CelebA-HQ-img/N.jpg at twice the size of CelebAMask-HQ-mask-anno/K/NNNNN_part.png."""
    partition, mapping = [], ["idx orig_idx orig_file"]
    for n in range(count):
        image, mask = face(n, 2 * mask_size, 2 * mask_size)
        _save(image, f"{root}/CelebA-HQ-img/{n}.jpg")
        small = mask[::2, ::2]
        for synthetic_part, part in CELEBA_OF_SYNTHETIC.items():
            region = small == SYNTHETIC_PARTS.index(synthetic_part)
            if region.any():
                _save(region.astype(np.uint8) * 255,
                      f"{root}/CelebAMask-HQ-mask-anno/{n // 2000}/{n:05d}_{part}.png")
        band = np.zeros_like(small, np.uint8)  # the rare parts, painted last
        for i, part in enumerate(CELEBA_PARTS[13:]):
            band[-6:, i * 6:(i + 1) * 6] = 255
            _save(band.copy(), f"{root}/CelebAMask-HQ-mask-anno/{n // 2000}/{n:05d}_{part}.png")
            band[:] = 0
        orig = f"{n * 7 + 1:06d}.jpg"
        mapping.append(f"{n} {n * 7} {orig}")
        partition.append(f"{orig} {(0, 0, 0, 1, 2)[n % 5]}")
    with open(f"{root}/CelebA-HQ-to-CelebA-mapping.txt", "w") as f:
        f.write("\n".join(mapping) + "\n")
    with open(f"{root}/list_eval_partition.txt", "w") as f:
        f.write("\n".join(partition) + "\n")


# A CVAT "Segmentation mask 1.1" export's classes: names no built-in table has, in
# labelmap.txt's order, and what each synthetic part is labelled as.
CVAT_CLASSES = (("background", (0, 0, 0)), ("face skin", (250, 200, 160)),
                ("brow", (90, 50, 20)), ("eye", (20, 120, 250)), ("snout", (250, 210, 0)),
                ("lips", (220, 20, 60)), ("ear", (150, 90, 220)), ("specs", (0, 210, 140)),
                ("locks", (255, 120, 0)))
CVAT_OF_SYNTHETIC = dict(skin="face skin", l_brow="brow", r_brow="brow", l_eye="eye",
                         r_eye="eye", nose="snout", u_lip="lips", l_lip="lips",
                         inner_mouth="lips", l_ear="ear", r_ear="ear", glasses="specs",
                         hair="locks")


def cvat_ids(mask: np.ndarray) -> np.ndarray:
    """A synthetic mask in CVAT_CLASSES positions (every class in a band at the bottom)."""
    names = [n for n, _ in CVAT_CLASSES]
    ids = {p: names.index(CVAT_OF_SYNTHETIC.get(p, "background")) for p in SYNTHETIC_PARTS}
    return relabel(mask, ids, len(CVAT_CLASSES))


def write_cvat(root, count=8, size=(120, 100), subsets=None):
    """JPEGImages/, SegmentationClass/ (RGB colour masks), ImageSets/Segmentation/*.txt
    (``default.txt`` with every name unless ``subsets`` maps subset -> count) and
    labelmap.txt, as CVAT writes them. Returns the masks in CVAT_CLASSES positions."""
    palette = np.array([c for _, c in CVAT_CLASSES], np.uint8)
    names, masks = [], {}
    for n in range(count):
        image, mask = face(n, *size)
        name = f"frame_{n:06d}"
        _save(image, f"{root}/JPEGImages/{name}.jpg")
        masks[name] = cvat_ids(mask)
        _save(palette[masks[name]], f"{root}/SegmentationClass/{name}.png")
        names.append(name)
    os.makedirs(f"{root}/ImageSets/Segmentation", exist_ok=True)
    groups, start = subsets or {"default": count}, 0
    for subset, k in groups.items():
        with open(f"{root}/ImageSets/Segmentation/{subset}.txt", "w") as f:
            f.write("\n".join(names[start:start + k]) + "\n")
        start += k
    with open(f"{root}/labelmap.txt", "w") as f:
        f.write("# label:color_rgb:parts:actions\n")
        f.write("".join(f"{n}:{r},{g},{b}::\n" for n, (r, g, b) in CVAT_CLASSES))
    return masks
