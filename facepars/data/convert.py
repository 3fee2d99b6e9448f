"""Turn one raw pair into a training record's bytes: the work prepare's processes share.

Decode, check, remap ids through the taxonomy's lookup table, resize (antialiased
for the image, nearest for the mask), encode. No TensorFlow here: this runs in
worker processes that should start fast and stay small.
"""

from __future__ import annotations

import ctypes
import dataclasses
import platform

import numpy as np

from facepars.core import imaging
from facepars.core.classes import IGNORE_LABEL
from facepars.core.imaging import BadInput
from facepars.data import framing
from facepars.faces import alignment, detection


@dataclasses.dataclass(frozen=True)
class ConvertSpec:
    source: str
    lut: np.ndarray
    valid: np.ndarray
    num_classes: int
    image_size: int
    resize: str
    image_format: str
    jpeg_quality: int
    framing: framing.FramingClasses | None = None  # what the face points are measured from
    align: str = "none"  # landmarks|detect: warp each face's five points onto the template


@dataclasses.dataclass(frozen=True)
class Converted:
    source_id: str
    image: bytes
    mask: bytes
    class_pixels: np.ndarray  # int64 (num_classes,), ignore label excluded
    points: np.ndarray | None = None  # (5, 2) face points measured from the mask


@dataclasses.dataclass(frozen=True)
class Failed:
    source_id: str
    error: str


def check_ids(raw: np.ndarray, spec: ConvertSpec, label_file: str) -> None:
    """Refuse raw ids outside the source's table, naming them."""
    if spec.valid[: int(raw.max(initial=0)) + 1].all():
        return  # the common case, decided by one max() over the mask
    present = np.bincount(raw.ravel(), minlength=256) > 0
    unknown = np.flatnonzero(present & ~spec.valid)
    if unknown.size:
        known = np.flatnonzero(spec.valid)
        raise BadInput(label_file, f"mask ids {unknown.tolist()} are not in the {spec.source} "
                                   f"table (ids {known.min()}..{known.max()})")


def convert(ref, spec: ConvertSpec) -> Converted | Failed:
    """Convert one pair reference (see facepars.data.sources) or say why not."""
    try:
        if spec.align != "none":
            image, label = _aligned(ref, spec)
        else:
            image, raw = ref.load(at_least=(spec.image_size, spec.image_size))
            check_ids(raw, spec, ref.label_file)
            size, mode = spec.image_size, spec.resize
            image = imaging.resize_image(image, imaging.geometry(*image.shape[:2], size, mode))
            label = imaging.resize_mask(raw, imaging.geometry(*raw.shape, size, mode), lut=spec.lut)
        pixels = np.bincount(label.ravel(), minlength=256)[:spec.num_classes]
        points = framing.points_from_mask(label, spec.framing) if spec.framing else None
        return Converted(ref.source_id,
                         imaging.encode_image(image, spec.image_format, spec.jpeg_quality),
                         imaging.encode_mask(label), pixels.astype(np.int64), points)
    except BadInput as e:
        return Failed(ref.source_id, str(e))


_DETECTOR = None


# The framing modes whose crops put each face's five points on the template: the
# one rule for "aligned data" in prepare and in evaluation at original resolution.
ALIGNED_MODES = ("landmarks", "detect")


def face_points(ref, image: np.ndarray, align: str, detector=None) -> np.ndarray:
    """The five points a crop is aligned on: the source's own (``landmarks``), or the
    largest face ``detector`` (default MTCNN, loaded once) finds (``detect``)."""
    if align == "landmarks":
        points = ref.five_points()
        if points is None:
            raise BadInput(ref.image, "no five-point landmarks for --align=landmarks (LaPa: "
                                      "landmarks/NAME.txt beside images/)")
        return points
    if detector is None:
        global _DETECTOR
        if _DETECTOR is None:  # once per worker process (mtcnn brings TensorFlow with it)
            _DETECTOR = detection.MTCNNDetector()
        detector = _DETECTOR
    faces = detection.find(detector, image)
    if not faces:
        raise BadInput(ref.image, "no face found by the detector (--align=detect)")
    return max(faces, key=lambda f: f.width).landmarks


def at_mask_size(photo: np.ndarray, points, shape) -> tuple[np.ndarray, np.ndarray | None]:
    """The photo (and its five points, or None) at its mask's size: CelebAMask-HQ's
    masks are half its photos' size, and labels are never resampled."""
    if photo.shape[:2] == tuple(shape):
        return photo, points
    scale = np.array([shape[1] / photo.shape[1], shape[0] / photo.shape[0]])
    points = None if points is None else alignment.rescale(points, scale)
    return imaging.resize_to(photo, *shape), points


def _aligned(ref, spec: ConvertSpec) -> tuple[np.ndarray, np.ndarray]:
    """The crop that puts the face's five points on the template (--align=landmarks|detect).

    The whole photo is decoded (a reduced JPEG decode could lose a small face);
    a photo larger than its mask (CelebAMask-HQ's are half) is brought to the
    mask's size first. Outside the photo the image is black and the mask the
    ignore label.
    """
    image, raw = ref.load()
    check_ids(raw, spec, ref.label_file)
    image, points = at_mask_size(image, face_points(ref, image, spec.align), raw.shape)
    matrix = alignment.similarity(points, alignment.template(spec.image_size))
    return (imaging.warp(image, matrix, spec.image_size, nearest=False, fill=(0, 0, 0)),
            imaging.warp(spec.lut[raw], matrix, spec.image_size, nearest=True, fill=IGNORE_LABEL))


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX = -1, -3, 32 << 20


def keep_freed_memory() -> None:
    """Serve each pair's large buffers from memory the process already holds.

    A pair allocates and frees several MB (the decoded photo, its RGB copy, the
    mask). glibc's defaults give such blocks back to the kernel on free and map
    them afresh, zero-filled, for the next pair: 1,500-2,000 page faults and up
    to a fifth of a pair's CPU time, worst in fresh worker processes (BUILD_NOTES.md
    has the measurement). Keeping them costs a heap that stays at its high-water
    mark, a few tens of MB, until the process ends. The setting is process-wide,
    which is why prepare calls it only in processes that do nothing else. A no-op
    off glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    libc.mallopt(_M_TRIM_THRESHOLD, 4 * _MMAP_THRESHOLD_MAX)


_SPEC: ConvertSpec | None = None


def init_worker(spec: ConvertSpec) -> None:
    """Pool initializer: ship the spec once per process, not once per pair."""
    global _SPEC
    _SPEC = spec
    keep_freed_memory()


def convert_in_worker(ref) -> Converted | Failed:
    return convert(ref, _SPEC)
