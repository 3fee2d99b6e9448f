"""Readers for the source datasets' published layouts (docs/data.md).

A reader walks a layout and returns, per split, a list of pair references: small
picklable objects that a worker process turns into ``(image, raw mask)`` with
``load()``. Pairing problems found while listing (an image without its mask, a
mask without its image) come back as ``BadInput`` so the converter treats them
like any other bad pair.

Raw ids are the positions of the source's labels (``source_table``). The user's
sources (``voc``, ``folder``) bring their table in a file and masks of their own
values or colours; a pair decodes its mask to positions on loading
(``decode_labels``), naming any value or colour the table does not have.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re

import numpy as np

from facepars.core import files
from facepars.core.classes import CELEBAMASK_PARTS, IGNORE_LABEL, SOURCE_TABLES, SourceTable
from facepars.core.errors import FaceparsError
from facepars.core.imaging import BadInput, read_image, read_label_image, read_mask
from facepars.data import class_files, synthetic

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class LayoutError(FaceparsError):
    """The input directory is not in the layout the chosen source publishes."""


# LaPa's 106-point annotation: the indices of the five points alignment uses
# (eye centres, nose tip, mouth corners; facepars.faces.alignment.POINTS).
LAPA_FIVE = (104, 105, 54, 84, 90)
SOURCES_WITH_LANDMARKS = ("lapa", "synthetic")


def read_lapa_landmarks(path: str) -> np.ndarray:
    """The five points of a LaPa ``landmarks/NAME.txt`` (a count, then "x y" lines)."""
    try:
        with files.open(path) as f:
            lines = f.read().split("\n")
        count = int(lines[0])
        points = np.array([[float(v) for v in line.split()[:2]]
                           for line in lines[1:count + 1]], np.float64)
    except FileNotFoundError:
        raise BadInput(path, "landmark file not found") from None
    except (ValueError, IndexError) as e:
        raise BadInput(path, f"not a LaPa landmark file ({e})") from None
    if points.shape != (106, 2):
        raise BadInput(path, f"{len(points)} landmarks, expected 106")
    return points[list(LAPA_FIVE)]


def decode_labels(path: str, table: SourceTable, coding: str) -> np.ndarray:
    """A user source's mask file -> label positions (H, W) uint8, IGNORE_LABEL where the
    table ignores (VOC's boundaries). Palette and grey files hold ids (or, for a table
    of colours only, a palette's colours); RGB files colours (or ids, if grey)."""
    pixels, palette = read_label_image(path)
    if pixels.ndim == 2 and table.values is None:  # a palette file of a colours-only table
        if palette is None or len(palette) <= pixels.max(initial=0):
            raise BadInput(path, f"a single-channel mask, but {coding} gives the classes' "
                                 "colours only")
        pixels = palette[pixels]
    if pixels.ndim == 3 and table.colors is None:
        if not ((pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2])).all():
            raise BadInput(path, f"a colour mask, but {coding} gives the classes' ids only")
        pixels = pixels[..., 0]
    if pixels.ndim == 2:
        keys, known = pixels, {v: i for i, v in enumerate(table.values)}
        if table.ignore:
            known[IGNORE_LABEL] = IGNORE_LABEL
        name = lambda k: f"value {k}"
    else:
        keys = (pixels[..., 0].astype(np.int32) << 16) | (pixels[..., 1].astype(np.int32) << 8) \
            | pixels[..., 2]
        pack = lambda c: (c[0] << 16) | (c[1] << 8) | c[2]
        known = {pack(c): i for i, c in enumerate(table.colors)}
        if table.ignore:
            known[pack(class_files.VOC_BOUNDARY)] = IGNORE_LABEL
        name = lambda k: f"colour ({k >> 16}, {(k >> 8) & 255}, {k & 255})"
    found, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    unknown = [(int(k), int(c)) for k, c in zip(found, counts) if int(k) not in known]
    if unknown:
        listed = ", ".join(f"{name(k)} at {c} pixels" for k, c in unknown[:5])
        raise BadInput(path, f"{listed}{' and more' if len(unknown) > 5 else ''}: not in "
                             f"{coding}")
    return np.array([known[int(k)] for k in found], np.uint8)[inverse].reshape(keys.shape)


@dataclasses.dataclass(frozen=True)
class FilePair:
    """An image and a mask file (Kaggle, LaPa: ids; VOC and folder sources: decoded
    through ``coding``, their class table), and LaPa's landmark file."""

    source_id: str
    image: str
    mask: str
    landmarks_file: str | None = None
    coding: str | None = None  # class_files.load(coding); None: the mask holds raw ids

    def five_points(self) -> np.ndarray | None:
        return None if self.landmarks_file is None else read_lapa_landmarks(self.landmarks_file)

    @property
    def label_file(self) -> str:
        return self.mask

    def load(self, at_least=None) -> tuple[np.ndarray, np.ndarray]:
        image, (h, w) = read_image(self.image, at_least=at_least)
        mask = read_mask(self.mask) if self.coding is None else \
            decode_labels(self.mask, class_files.load(self.coding), self.coding)
        if (h, w) != mask.shape:
            raise BadInput(self.mask, f"mask is {mask.shape[1]}x{mask.shape[0]} but "
                                      f"image {self.image} is {w}x{h}")
        return image, mask


@dataclasses.dataclass(frozen=True)
class PartsPair:
    """A CelebAMask-HQ image and its per-part binary PNGs (``(raw id, path)``).

    Parts are painted in the published order (``raw id`` ascending), later over
    earlier. The masks are published at half the image's size, so the image must
    be the masks' size or twice it; the converter resizes both to the target.
    """

    source_id: str
    image: str
    parts: tuple[tuple[int, str], ...]

    @property
    def label_file(self) -> str:
        return os.path.dirname(self.parts[0][1]) + f"/{int(self.source_id):05d}_*.png"

    def five_points(self) -> None:
        return None  # CelebAMask-HQ ships no landmarks (its photos are aligned already)

    def load(self, at_least=None) -> tuple[np.ndarray, np.ndarray]:
        image, (h, w) = read_image(self.image, at_least=at_least)
        mask = None
        for raw_id, path in sorted(self.parts):
            part = read_mask(path)
            if mask is None:
                mask = np.zeros(part.shape, np.uint8)
            elif part.shape != mask.shape:
                raise BadInput(path, f"part mask is {part.shape[1]}x{part.shape[0]}, "
                                     f"other parts are {mask.shape[1]}x{mask.shape[0]}")
            mask[part > 0] = raw_id
        if mask is None:
            raise BadInput(self.image, "no part masks")
        if (h, w) not in (mask.shape, (2 * mask.shape[0], 2 * mask.shape[1])):
            raise BadInput(self.image, f"image is {w}x{h}, its part "
                                       f"masks {mask.shape[1]}x{mask.shape[0]} (expected "
                                       "equal or half size)")
        return image, mask


@dataclasses.dataclass(frozen=True)
class SyntheticPair:
    source_id: str
    seed: int
    index: int
    height: int
    width: int

    @property
    def label_file(self) -> str:
        return self.source_id

    def load(self, at_least=None) -> tuple[np.ndarray, np.ndarray]:
        del at_least  # drawn at its own size
        return _drawn(self.seed, self.index, self.height, self.width)[:2]

    def five_points(self) -> np.ndarray:
        """Exact, from the drawing."""
        return _drawn(self.seed, self.index, self.height, self.width)[2]


@functools.lru_cache(maxsize=1)
def _drawn(seed: int, index: int, height: int, width: int):
    """A synthetic face drawn once for both its pixels and its points (``prepare
    --align=landmarks`` asks for both; drawing it twice doubled the time per
    face). Read-only, since the arrays are shared."""
    drawn = synthetic.render_with_landmarks(seed, index, height, width)
    for array in drawn:
        array.flags.writeable = False
    return drawn


Listing = tuple[dict[str, list], list[BadInput]]
PAIR_TYPES = {t.__name__: t for t in (FilePair, PartsPair, SyntheticPair)}


# Each pair type's field names, in the order its JSON lists their values.
_FIELDS = {name: tuple(f.name for f in dataclasses.fields(t)) for name, t in PAIR_TYPES.items()}


def pair_to_json(ref) -> list:
    """A pair reference as JSON (a plan file a remote worker reads). The fields are
    read as they are, not through ``dataclasses.astuple``, which deep-copies each:
    a plan lists every pair of the data set."""
    kind = type(ref).__name__
    return [kind, *(getattr(ref, name) for name in _FIELDS[kind])]


def pair_from_json(data: list):
    kind, *values = data
    if kind == "PartsPair":
        values[2] = tuple(tuple(part) for part in values[2])
    return PAIR_TYPES[kind](*values)


def _files(directory: str, extensions=IMAGE_EXTENSIONS) -> dict[str, str]:
    """stem -> path of the files in ``directory`` with the given extensions."""
    return {os.path.splitext(n)[0]: files.join(directory, n)
            for n in sorted(files.listdir(directory))
            if n.lower().endswith(extensions) and not n.startswith(".")}


def _pair_dirs(image_dir: str, mask_dir: str, prefix: str,
               landmark_dir: str | None = None, coding: str | None = None) -> tuple[list, list]:
    images, masks = _files(image_dir), _files(mask_dir, (".png", ".bmp"))
    landmarks = _files(landmark_dir, (".txt",)) if landmark_dir and files.isdir(landmark_dir) \
        else {}
    pairs = [FilePair(f"{prefix}{stem}", images[stem], masks[stem], landmarks.get(stem), coding)
             for stem in sorted(images.keys() & masks.keys())]
    bad = [
        BadInput(images[s], f"image without mask (expected {files.join(mask_dir, s)}.png)")
        for s in sorted(images.keys() - masks.keys())
    ]
    bad += [
        BadInput(masks[s], f"mask without image (expected {files.join(image_dir, s)}.jpg)")
        for s in sorted(masks.keys() - images.keys())
    ]
    return pairs, bad


def _split_dirs(root: str, splits, image_sub: str, mask_sub: str, layout: str,
                landmark_sub: str | None = None) -> Listing:
    found, bad = {}, []
    for split in splits:
        image_dir, mask_dir = (files.join(root, split, s) for s in (image_sub, mask_sub))
        landmark_dir = files.join(root, split, landmark_sub) if landmark_sub else None
        if files.isdir(image_dir) and files.isdir(mask_dir):
            found[split], split_bad = _pair_dirs(image_dir, mask_dir, f"{split}/", landmark_dir)
            bad += split_bad
    if not found:
        raise LayoutError(f"{root}: no split in the {layout} layout "
                          f"({{{','.join(splits)}}}/{image_sub} with .../{mask_sub})")
    return found, bad


def list_kaggle(input_dir: str) -> Listing:
    """``content/All_data/{train,val}/{image,seg}`` (the zip's root, or any level below)."""
    for root in (files.join(input_dir, "content", "All_data"),
                 files.join(input_dir, "All_data"), input_dir):
        if any(files.isdir(files.join(root, s, "image")) for s in ("train", "val")):
            return _split_dirs(root, ("train", "val"), "image", "seg",
                               "Kaggle content/All_data/{train,val}/{image,seg}")
    raise LayoutError(f"{input_dir}: not the Kaggle layout (expected "
                      "content/All_data/{train,val}/image/*.jpg and .../seg/*.png)")


def list_lapa(input_dir: str) -> Listing:
    """``{train,val,test}/{images,labels}``, and ``.../landmarks/NAME.txt`` (106 points)."""
    return _split_dirs(input_dir, ("train", "val", "test"), "images", "labels",
                       "LaPa {train,val,test}/{images,labels}", landmark_sub="landmarks")


def list_celebamask_hq(input_dir: str) -> Listing:
    """``CelebA-HQ-img/N.jpg`` + ``CelebAMask-HQ-mask-anno/K/NNNNN_PART.png``, split by
    CelebA's ``list_eval_partition.txt`` through ``CelebA-HQ-to-CelebA-mapping.txt``."""
    image_dir = files.join(input_dir, "CelebA-HQ-img")
    anno_dir = files.join(input_dir, "CelebAMask-HQ-mask-anno")
    mapping = files.join(input_dir, "CelebA-HQ-to-CelebA-mapping.txt")
    partition = files.join(input_dir, "list_eval_partition.txt")
    for path in (image_dir, anno_dir, mapping, partition):
        if not files.exists(path):
            raise LayoutError(f"{path}: missing; the CelebAMask-HQ layout needs "
                              "CelebA-HQ-img/, CelebAMask-HQ-mask-anno/, "
                              "CelebA-HQ-to-CelebA-mapping.txt and CelebA's "
                              "list_eval_partition.txt in the input dir")
    split_of_file = {}
    with files.open(partition) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 2:
                split_of_file[fields[0]] = ("train", "val", "test")[int(fields[1])]
    split_of_hq = {}
    with files.open(mapping) as f:
        for line in f:
            fields = line.split()
            if len(fields) == 3 and fields[0].isdigit():
                split_of_hq[int(fields[0])] = split_of_file.get(fields[2])

    part_id = {name: i + 1 for i, name in enumerate(CELEBAMASK_PARTS)}
    parts: dict[int, list] = {}
    pattern = re.compile(r"^(\d{5})_(.+)\.png$")
    for sub in sorted(files.listdir(anno_dir)):
        sub_dir = files.join(anno_dir, sub)
        for name in sorted(files.listdir(sub_dir)) if files.isdir(sub_dir) else ():
            m = pattern.match(name)
            if m and m.group(2) in part_id:
                parts.setdefault(int(m.group(1)), []).append(
                    (part_id[m.group(2)], files.join(sub_dir, name)))
    images = {int(stem): path for stem, path in _files(image_dir).items() if stem.isdigit()}

    found: dict[str, list] = {}
    bad = [
        BadInput(
            images[n],
            f"image without part masks (expected {anno_dir}/{n // 2000}/{n:05d}_skin.png ...)",
        )
        for n in sorted(images.keys() - parts.keys())
    ]
    bad += [BadInput(parts[n][0][1], f"part masks without image {image_dir}/{n}.jpg")
            for n in sorted(parts.keys() - images.keys())]
    for n in sorted(images.keys() & parts.keys()):
        split = split_of_hq.get(n)
        if split is None:
            bad.append(BadInput(images[n], f"no CelebA partition for image {n} in {mapping}"))
            continue
        found.setdefault(split, []).append(PartsPair(str(n), images[n], tuple(parts[n])))
    return found, bad


def list_voc(input_dir: str, classes: str | None = None) -> Listing:
    """Pascal VOC's segmentation layout, as CVAT's "Segmentation mask 1.1" export writes
    it: ``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/Segmentation/<split>.txt``
    (CVAT's ``default.txt`` becomes train; without the folder every pair is train),
    and ``labelmap.txt`` (else VOC's own 21 classes). ``classes`` overrides the table."""
    image_dir, mask_dir = (files.join(input_dir, d) for d in ("JPEGImages", "SegmentationClass"))
    for path in (image_dir, mask_dir):
        if not files.isdir(path):
            raise LayoutError(f"{path}: missing; the VOC layout needs JPEGImages/ and "
                              "SegmentationClass/ (and ImageSets/Segmentation/*.txt)")
    coding = voc_coding(input_dir, classes)
    pairs, bad = _pair_dirs(image_dir, mask_dir, "", coding=coding)
    by_stem = {p.source_id: p for p in pairs}
    sets_dir = files.join(input_dir, "ImageSets", "Segmentation")
    subsets = {os.path.splitext(n)[0]: files.join(sets_dir, n)
               for n in (files.listdir(sets_dir) if files.isdir(sets_dir) else ())
               if n.endswith(".txt")}
    if {"train", "val"} <= subsets.keys():
        subsets.pop("trainval", None)  # VOC's union of the two
    if not subsets:
        return {"train": pairs}, bad
    found: dict[str, list] = {}
    for subset, path in sorted(subsets.items()):
        split = "train" if subset == "default" else subset
        with files.open(path) as f:
            stems = [line.split()[0] for line in f.read().splitlines() if line.strip()]
        for stem in stems:
            if stem not in by_stem:
                bad.append(BadInput(path, f"{stem} is listed, but {image_dir}/{stem}.jpg or "
                                          f"{mask_dir}/{stem}.png is missing"))
                continue
            found.setdefault(split, []).append(dataclasses.replace(
                by_stem[stem], source_id=f"{split}/{stem}"))
    return found, bad


def voc_coding(input_dir: str, classes: str | None) -> str:
    """The class table of a VOC layout: ``classes``, its labelmap.txt, or VOC's own."""
    labelmap = files.join(input_dir, class_files.LABELMAP)
    return classes or (labelmap if files.exists(labelmap) else class_files.VOC)


def list_folder(input_dir: str, classes: str | None) -> Listing:
    """``images/`` and ``masks/`` matched by file stem, at the top (all train) or under
    split folders (``train/images``, ``train/masks``, ``val/...``), with a class file."""
    if not classes:
        raise LayoutError("--source=folder needs --classes=FILE (the class file: "
                          "docs/data.md, \"Your own data\")")
    if files.isdir(files.join(input_dir, "images")):
        pairs, bad = _pair_dirs(files.join(input_dir, "images"),
                                files.join(input_dir, "masks"), "", coding=classes)
        return {"train": pairs}, bad
    splits = [n.rstrip("/") for n in files.listdir(input_dir)
              if files.isdir(files.join(input_dir, n.rstrip("/"), "images"))]
    if not splits:
        raise LayoutError(f"{input_dir}: expected images/ and masks/, or split folders "
                          "holding them (train/images, train/masks, val/...)")
    found, bad = {}, []
    for split in sorted(splits):
        found[split], split_bad = _pair_dirs(files.join(input_dir, split, "images"),
                                             files.join(input_dir, split, "masks"),
                                             f"{split}/", coding=classes)
        bad += split_bad
    return found, bad


SYNTHETIC_SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))


def list_synthetic(num_examples: int, seed: int, base_size: int) -> Listing:
    """Synthetic faces split 80/10/10 by index, each at its own photo size."""
    found, start = {}, 0
    for i, (split, fraction) in enumerate(SYNTHETIC_SPLITS):
        end = (
            num_examples
            if i == len(SYNTHETIC_SPLITS) - 1
            else start + round(num_examples * fraction)
        )
        found[split] = [SyntheticPair(f"synthetic/{seed}/{n}", seed, n,
                                      *synthetic.size_for(seed, n, base_size))
                        for n in range(start, end)]
        start = end
    return {k: v for k, v in found.items() if v}, []


FILE_SOURCES = {"kaggle": list_kaggle, "celebamask_hq": list_celebamask_hq, "lapa": list_lapa}
USER_SOURCES = {"voc": list_voc, "folder": list_folder}  # they bring their own class table
SOURCES = tuple(FILE_SOURCES) + ("synthetic",) + tuple(USER_SOURCES)
assert set(SOURCES) == set(SOURCE_TABLES) | set(USER_SOURCES)


def source_table(source: str, input_dir: str | None, classes: str | None = None) -> SourceTable:
    """The raw labels of ``source``: built in, or read from the user's class file."""
    if source == "voc":
        return class_files.load(voc_coding(input_dir or "", classes))
    if source == "folder":
        if not classes:
            raise LayoutError("--source=folder needs --classes=FILE")
        return class_files.load(classes)
    if classes:
        raise LayoutError(f"--classes is for the voc and folder sources; {source} has its own "
                          "table (--taxonomy=source keeps it as published)")
    return SOURCE_TABLES[source]


def list_source(source: str, input_dir: str | None, num_examples: int = 0,
                seed: int = 0, synthetic_size: int = synthetic.BASE_SIZE,
                classes: str | None = None) -> Listing:
    """Pairs per split for ``source``; raises LayoutError for a missing or alien layout."""
    if source == "synthetic":
        if num_examples <= 0:
            raise LayoutError("--source=synthetic needs --num_examples > 0")
        return list_synthetic(num_examples, seed, synthetic_size)
    if source not in FILE_SOURCES and source not in USER_SOURCES:
        raise LayoutError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")
    if not input_dir or not files.isdir(input_dir):
        raise LayoutError(f"{input_dir}: input dir does not exist")
    if not files.listdir(input_dir):
        raise LayoutError(f"{input_dir}: input dir is empty")
    if source in USER_SOURCES:
        return USER_SOURCES[source](input_dir, classes)
    return FILE_SOURCES[source](input_dir)


def carve_split(pairs: dict[str, list], fraction: float, seed: int,
                src: str = "train", dst: str = "val") -> dict[str, list]:
    """Move a seeded ``fraction`` of ``src`` into a new ``dst`` split."""
    if dst in pairs:
        raise LayoutError(f"the source already has a {dst!r} split; "
                          "carving one out of train would mix two definitions")
    items = sorted(pairs[src], key=lambda p: p.source_id)
    order = np.random.default_rng(seed).permutation(len(items))
    count = round(len(items) * fraction)
    out = dict(pairs)
    out[dst] = sorted((items[i] for i in order[:count]), key=lambda p: p.source_id)
    out[src] = sorted((items[i] for i in order[count:]), key=lambda p: p.source_id)
    return out
