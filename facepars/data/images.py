"""Host-side image and mask I/O with Pillow and numpy (no TensorFlow).

``prepare``'s worker processes and ``predict`` both read arbitrary photos; keeping
this module free of TensorFlow lets worker processes start in a fraction of a
second and use little memory.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facepars.classes import IGNORE_LABEL
from facepars.data import fileio
from facepars.errors import FaceparsError

RESIZE_MODES = ("stretch", "pad")


class BadInput(FaceparsError):
    """A file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem

    def __reduce__(self):  # survive the trip back from a worker process
        return BadInput, (self.path, self.problem)


def _open(path: str, at_least: tuple[int, int] | None = None
          ) -> tuple[Image.Image, tuple[int, int]]:
    """Open and decode ``path``; returns the image and its stored (H, W)."""
    try:
        img = Image.open(fileio.open(path, "rb") if fileio.is_url(path) else path)
        stored = (img.size[1], img.size[0])
        if at_least is not None and img.format == "JPEG":
            img.draft(img.mode, (2 * at_least[1], 2 * at_least[0]))  # keep 2x margin
        img.load()  # decode now, so truncation is caught here
    except FileNotFoundError:
        raise BadInput(path, "file not found") from None
    except UnidentifiedImageError:
        raise BadInput(path, "not a readable image (corrupt, empty or unknown format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadInput(path, f"corrupt or truncated image ({e})") from None
    return img, stored


def read_image(path: str, apply_exif: bool = False,
               at_least: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Read any JPEG/PNG/BMP/... as 8-bit RGB (H, W, 3); also return its stored (H, W).

    Grey, palette, CMYK, 16-bit and alpha images are converted; alpha is composited
    over black. ``apply_exif`` rotates by the EXIF orientation: right for a user's
    photo, wrong for a dataset image whose mask was drawn on the stored pixels.
    ``at_least=(h, w)`` lets a JPEG decode at 1/2, 1/4 or 1/8 scale (DCT scaling,
    itself an area average) while staying at least that large: several times
    faster for the large photos of face sets, when only a small version is wanted.
    """
    img, stored = _open(path, at_least)
    if apply_exif:
        img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if values.max() > 255 else 255.0
        img = Image.fromarray(np.round(values / peak * 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB")), stored


def read_mask(path: str) -> np.ndarray:
    """Read a label mask as raw ids (H, W) uint8.

    Palette PNGs give their indices, 3-channel masks their first channel (the
    Kaggle set's convention); ids above 255 cannot be represented and are refused.
    """
    mask = np.asarray(_open(path)[0])
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    if mask.dtype != np.uint8:
        if mask.max(initial=0) > 255 or mask.min(initial=0) < 0:
            raise BadInput(path, f"mask values up to {mask.max()} do not fit label ids 0..255")
        mask = mask.astype(np.uint8)
    return mask


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where a photo of (height, width) lands in the square network input.

    One definition shared by prepare (going in) and evaluate/predict (coming
    back out), so undoing a resize can never disagree with doing it.
    """

    height: int
    width: int
    size: int
    mode: str

    @property
    def content_box(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the photo inside the size x size input."""
        if self.mode == "stretch":
            return 0, 0, self.size, self.size
        scale = self.size / max(self.height, self.width)
        h = max(1, round(self.height * scale))
        w = max(1, round(self.width * scale))
        return (self.size - h) // 2, (self.size - w) // 2, h, w


def geometry(height: int, width: int, size: int, mode: str) -> Geometry:
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r} is not one of {RESIZE_MODES}")
    return Geometry(height, width, size, mode)


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output index for a nearest resize with pixel centres aligned."""
    return np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.int64), n_in - 1)


def resize_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased (triangle filter) resize of an RGB image."""
    return np.asarray(Image.fromarray(image).resize(
        (width, height), Image.Resampling.BILINEAR, reducing_gap=3.0))


def resize_image(image: np.ndarray, geo: Geometry) -> np.ndarray:
    """Antialiased resize into the network input, padding with black in pad mode."""
    top, left, h, w = geo.content_box
    resized = resize_to(image, h, w)
    if (h, w) == (geo.size, geo.size):
        return resized
    out = np.zeros((geo.size, geo.size, 3), np.uint8)
    out[top:top + h, left:left + w] = resized
    return out


def resize_mask(mask: np.ndarray, geo: Geometry, lut: np.ndarray | None = None) -> np.ndarray:
    """Nearest resize (never invents a label), padding with the ignore label.

    ``lut`` remaps ids after sampling and before padding: the same labels as
    remapping first, for a fraction of the pixels of a large source mask.
    """
    top, left, h, w = geo.content_box
    resized = mask[nearest_indices(mask.shape[0], h)[:, None],
                   nearest_indices(mask.shape[1], w)[None, :]]
    if lut is not None:
        resized = lut[resized]
    if (h, w) == (geo.size, geo.size):
        return resized
    out = np.full((geo.size, geo.size), IGNORE_LABEL, np.uint8)
    out[top:top + h, left:left + w] = resized
    return out


def warp(array: np.ndarray, matrix: np.ndarray, size: int, nearest: bool, fill) -> np.ndarray:
    """The size x size crop ``matrix`` (2x3, source -> crop pixels, centres at whole
    numbers) frames: bilinear for images, nearest for masks, ``fill`` outside.

    A face much larger than the crop is first reduced by a whole factor (box
    average), as the antialiased resize of the unaligned path would; masks never
    are (averaging ids invents labels).
    """
    from facepars.alignment import invert, reduction, shifted

    img = Image.fromarray(array)
    factor = 1 if nearest else reduction(matrix)
    if factor > 1:
        img = img.reduce(factor)
        matrix = shifted(matrix, (factor - 1) / 2, (factor - 1) / 2, factor)
    # Pillow's pixel centres sit at +0.5: conjugate the crop -> source map by that shift.
    back = invert(matrix)
    data = [back[0, 0], back[0, 1], back[0, 2] + 0.5 - 0.5 * (back[0, 0] + back[0, 1]),
            back[1, 0], back[1, 1], back[1, 2] + 0.5 - 0.5 * (back[1, 0] + back[1, 1])]
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(img.transform((size, size), Image.Transform.AFFINE, data,
                                    resample=resample, fillcolor=fill))


def encode_image(image: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        # 4:4:4 keeps the colour of thin parts (eyebrows, lips) on their labels.
        Image.fromarray(image).save(buf, "JPEG", quality=quality, subsampling=0)
    elif fmt == "png":
        Image.fromarray(image).save(buf, "PNG", compress_level=3)
    else:
        raise ValueError(f"image format {fmt!r} is not jpeg or png")
    return buf.getvalue()


def encode_mask(mask: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Lossless single-channel PNG of class ids; with ``palette``, a palette PNG
    whose colours are the class colours (viewers show colours, readers get ids)."""
    img = Image.fromarray(mask)
    if palette is not None:
        flat = np.zeros((256, 3), np.uint8)
        flat[:len(palette)] = palette
        img.putpalette(flat.reshape(-1).tolist())
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=3)
    return buf.getvalue()
