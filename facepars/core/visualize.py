"""Pictures for people: coloured overlays and confusion-matrix heatmaps."""

from __future__ import annotations

import io

import numpy as np

from facepars.core.classes import IGNORE_LABEL, ClassTable


def colorize(labels: np.ndarray, table: ClassTable) -> np.ndarray:
    """Class ids -> RGB; the ignore label shows grey."""
    palette = np.zeros((256, 3), np.uint8)
    palette[:table.num_classes] = table.palette()
    palette[IGNORE_LABEL] = (128, 128, 128)
    return palette[labels]


def overlay(
    image: np.ndarray, labels: np.ndarray, table: ClassTable, alpha: float = 0.5
) -> np.ndarray:
    """The photo blended with class colours; background pixels stay the photo.

    Only labelled pixels are blended (a face is a small part of most video frames).
    """
    out = np.array(image[..., :3], np.uint8)
    labelled = labels != 0
    colours = colorize(labels[labelled], table).astype(np.float32)
    out[labelled] = (out[labelled].astype(np.float32) * (1 - alpha) + colours * alpha
                     ).astype(np.uint8)
    return out


def draw_boxes(image: np.ndarray, boxes, colour=(255, 255, 255)) -> np.ndarray:
    """The image with each (x0, y0, x1, y1) box outlined, 2 px or 1/200 of the side."""
    out = image.copy()
    height, width = out.shape[:2]
    t = max(2, min(height, width) // 200)
    for x0, y0, x1, y1 in boxes:
        x0, x1 = (int(np.clip(v, 0, width - 1)) for v in (x0, x1))
        y0, y1 = (int(np.clip(v, 0, height - 1)) for v in (y0, y1))
        out[y0:y0 + t, x0:x1 + 1] = colour
        out[max(y1 - t + 1, 0):y1 + 1, x0:x1 + 1] = colour
        out[y0:y1 + 1, x0:x0 + t] = colour
        out[y0:y1 + 1, max(x1 - t + 1, 0):x1 + 1] = colour
    return out


# matplotlib's "Blues" (ColorBrewer's nine-step sequential blues), from 0 to 1.
_BLUES = np.array([(247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225),
                   (107, 174, 214), (66, 146, 198), (33, 113, 181), (8, 81, 156),
                   (8, 48, 107)], np.float64)


def blues(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> RGB on the Blues scale, linear between its nine steps."""
    x = np.clip(np.asarray(values, np.float64), 0, 1) * (len(_BLUES) - 1)
    low = np.minimum(x.astype(int), len(_BLUES) - 2)
    t = (x - low)[..., None]
    return np.round(_BLUES[low] * (1 - t) + _BLUES[low + 1] * t).astype(np.uint8)


def _turned(text: str, font, angle: float):
    """``text`` as a mask, turned ``angle`` degrees counter-clockwise."""
    from PIL import Image, ImageDraw
    _, _, right, bottom = font.getbbox(text)
    mask = Image.new("L", (right + 2, bottom + 2))
    ImageDraw.Draw(mask).text((1, 1), text, fill=255, font=font)
    return mask.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)


def confusion_png(confusion: np.ndarray, table: ClassTable, title: str = "") -> bytes:
    """Row-normalised confusion matrix (recall on the diagonal) with class names:
    rows the true class, columns the predicted one, each share written in its cell
    on the Blues scale, and the scale beside it.

    Drawn with Pillow, not matplotlib: training draws two an epoch, and matplotlib
    took fifteen times as long (BUILD_NOTES, its row of the dependencies).
    """
    from PIL import Image, ImageDraw, ImageFont

    cm = np.asarray(confusion, np.float64)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n, names = table.num_classes, list(table.names)
    font, small, large = (ImageFont.load_default(size=size) for size in (13, 11, 15))
    cell, pad, bar = 46, 10, 16
    name_width = max(int(font.getlength(name)) for name in names)
    grid = n * cell
    left, top = pad + 20 + name_width + 8, pad + 28
    bottom = top + grid + 8 + int(0.72 * name_width) + 12  # names turned 45 degrees
    width, height = left + grid + 24 + bar + 44, bottom + 24 + pad

    image = Image.new("RGB", (width, height), "white")
    image.paste(Image.fromarray(blues(norm)).resize((grid, grid), Image.Resampling.NEAREST),
                (left, top))
    draw = ImageDraw.Draw(image)
    draw.rectangle((left - 1, top - 1, left + grid, top + grid), outline="black")
    for i in range(n):
        middle = top + i * cell + cell // 2
        draw.text((left - 8, middle), names[i], fill="black", font=font, anchor="rm")
        name = _turned(names[i], font, 45)
        right = left + i * cell + cell // 2 + 4
        image.paste((0, 0, 0), (right - name.width, top + grid + 6, right,
                                top + grid + 6 + name.height), name)
        for j in range(n):
            if norm[i, j] >= 0.005:
                draw.text((left + j * cell + cell // 2, middle), f"{norm[i, j]:.2f}",
                          fill="white" if norm[i, j] > 0.5 else "black", font=small,
                          anchor="mm")
    draw.text((left + grid // 2, height - pad), "predicted", fill="black", font=font,
              anchor="md")
    true = _turned("true", font, 90)
    image.paste((0, 0, 0), (pad, top + (grid - true.height) // 2, pad + true.width,
                            top + (grid + true.height) // 2), true)
    draw.text((left + grid // 2, pad), title or "confusion matrix (rows normalised)",
              fill="black", font=large, anchor="ma")

    x = left + grid + 24
    scale = blues(np.linspace(1, 0, grid))[:, None].repeat(bar, 1)
    image.paste(Image.fromarray(scale), (x, top))
    draw.rectangle((x - 1, top - 1, x + bar, top + grid), outline="black")
    for value in (0.0, 0.5, 1.0):
        y = top + round((1 - value) * (grid - 1))
        draw.line((x + bar, y, x + bar + 4, y), fill="black")
        draw.text((x + bar + 7, y), f"{value:.1f}", fill="black", font=small, anchor="lm")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
