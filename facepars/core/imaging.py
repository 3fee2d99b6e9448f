"""Photos and masks on the host, with Pillow and numpy (no TensorFlow): decode,
resize, warp, encode.

The one imaging layer every path stands on: prepare's conversion (training
crops), detection, alignment and prediction (the crops a model is shown) use
these same functions, so what a model sees at serving time is made exactly as
what it saw in training. Keeping it free of TensorFlow lets prepare's worker
processes start in a fraction of a second and use little memory.

Coordinates are pixels with pixel centres at whole numbers; a 2x3 affine matrix
maps (x, y, 1) of one image to another.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facepars.core import files
from facepars.core.classes import IGNORE_LABEL
from facepars.core.errors import FaceparsError

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
        img = Image.open(files.open(path, "rb") if files.is_url(path) else path)
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


def read_label_image(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A mask as its file holds it, for sources whose masks are not plain ids:
    ``(pixels, palette)``, pixels (H, W) indices or values for palette and grey
    files (with the (N, 3) palette of a palette file, else None), (H, W, 3) colours
    for RGB and RGBA ones (alpha dropped)."""
    img = _open(path)[0]
    if img.mode in ("RGB", "RGBA", "RGBX"):
        return np.asarray(img.convert("RGB")), None
    if img.mode == "P":
        palette = np.asarray(img.getpalette() or [], np.uint8).reshape(-1, 3)
        return np.asarray(img), palette
    return read_mask(path), None


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


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply(matrix: np.ndarray, points) -> np.ndarray:
    """(N, 2) points through a 2x3 matrix."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def shifted(matrix: np.ndarray, dx: float, dy: float, factor: float = 1.0) -> np.ndarray:
    """``matrix`` for a photo window starting at (dx, dy), downsampled by ``factor``."""
    return np.hstack([matrix[:, :2] * factor, (matrix[:, :2] @ [dx, dy] + matrix[:, 2])[:, None]])


def reduction(matrix: np.ndarray) -> int:
    """The whole factor to area-average a photo by before sampling it at ``matrix``'s
    scale, so that bilinear sampling does not alias (1: none)."""
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return max(1, int(1.0 / scale)) if scale < 0.5 else 1


def footprint(matrix: np.ndarray, size: int, height: int, width: int, margin: int = 2):
    """(y0, y1, x0, x1): the photo window the size x size crop of ``matrix`` covers, or None.

    Work is confined to it, so a face in a 10,000 px photo costs what the face costs.
    """
    corners = apply(invert(matrix), [[0, 0], [size, 0], [0, size], [size, size]])
    x0, y0 = np.floor(corners.min(0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(0)).astype(int) + margin
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return (y0, y1, x0, x1) if x1 > x0 and y1 > y0 else None


def warp(array: np.ndarray, matrix: np.ndarray, size: int, nearest: bool, fill) -> np.ndarray:
    """The size x size crop ``matrix`` (2x3, photo -> crop pixels) frames: bilinear
    for images, nearest for masks, ``fill`` outside.

    The training crops (prepare) and the crops a model parses (prediction) are
    both made here. A face much larger than the crop is first reduced by a whole
    factor (box average), as the antialiased resize of the unaligned path would;
    masks never are (averaging ids invents labels). Only the window the crop
    covers is touched, cut on the reduction's block grid, so the result is the
    same as warping the whole photo.
    """
    factor = 1 if nearest else reduction(matrix)
    height, width = array.shape[:2]
    window = footprint(matrix, size, height, width, margin=2 * factor)
    if window is None:
        return np.full((size, size) + array.shape[2:], fill, np.uint8)
    y0, y1, x0, x1 = window
    y0, x0 = y0 - y0 % factor, x0 - x0 % factor
    y1, x1 = min(height, -(-y1 // factor) * factor), min(width, -(-x1 // factor) * factor)
    img = Image.fromarray(np.ascontiguousarray(array[y0:y1, x0:x1]))
    if factor > 1:
        img = img.reduce(factor)
    # Window pixel j (reduced) is photo pixel x0 + factor * j + (factor - 1) / 2.
    local = shifted(matrix, x0 + (factor - 1) / 2, y0 + (factor - 1) / 2, factor)
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(img.transform((size, size), Image.Transform.AFFINE, pillow_affine(local),
                                    resample=resample, fillcolor=fill))


def pillow_affine(matrix: np.ndarray) -> list[float]:
    """Pillow's AFFINE data for a 2x3 ``matrix`` (source -> output pixels, centres at
    whole numbers): the output -> source map, conjugated by Pillow's pixel centres at
    +0.5."""
    back = invert(matrix)
    return [back[0, 0], back[0, 1], back[0, 2] + 0.5 - 0.5 * (back[0, 0] + back[0, 1]),
            back[1, 0], back[1, 1], back[1, 2] + 0.5 - 0.5 * (back[1, 0] + back[1, 1])]


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
