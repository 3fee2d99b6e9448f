"""Turn one raw pair into a training record's bytes: the work prepare's processes share.

Decode, check, remap ids through the taxonomy's lookup table, resize (antialiased
for the image, nearest for the mask), encode. No TensorFlow here: this runs in
worker processes that should start fast and stay small.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from facepars.data import images
from facepars.data.images import BadInput


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


@dataclasses.dataclass(frozen=True)
class Converted:
    source_id: str
    image: bytes
    mask: bytes
    class_pixels: np.ndarray  # int64 (num_classes,), ignore label excluded


@dataclasses.dataclass(frozen=True)
class Failed:
    source_id: str
    error: str


def remap(raw: np.ndarray, spec: ConvertSpec, label_file: str) -> np.ndarray:
    """Raw source ids -> training ids; ids outside the source's table are an error."""
    present = np.bincount(raw.ravel(), minlength=256) > 0
    unknown = np.flatnonzero(present & ~spec.valid)
    if unknown.size:
        raise BadInput(label_file, f"mask ids {unknown.tolist()} are not in the "
                                   f"{spec.source} table (ids {np.flatnonzero(spec.valid).min()}"
                                   f"..{np.flatnonzero(spec.valid).max()})")
    return spec.lut[raw]


def convert(ref, spec: ConvertSpec) -> Converted | Failed:
    """Convert one pair reference (see facepars.data.sources) or say why not."""
    try:
        image, raw = ref.load()
        label = remap(raw, spec, ref.label_file)
        image = images.resize_image(image, images.geometry(*image.shape[:2], spec.image_size, spec.resize))
        label = images.resize_mask(label, images.geometry(*label.shape, spec.image_size, spec.resize))
        pixels = np.bincount(label.ravel(), minlength=256)[:spec.num_classes]
        return Converted(ref.source_id,
                         images.encode_image(image, spec.image_format, spec.jpeg_quality),
                         images.encode_mask(label), pixels.astype(np.int64))
    except BadInput as e:
        return Failed(ref.source_id, str(e))


_SPEC: ConvertSpec | None = None


def init_worker(spec: ConvertSpec) -> None:
    """Pool initializer: ship the spec once per process, not once per pair."""
    global _SPEC
    _SPEC = spec


def convert_in_worker(ref) -> Converted | Failed:
    return convert(ref, _SPEC)
