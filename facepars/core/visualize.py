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


def confusion_png(confusion: np.ndarray, table: ClassTable, title: str = "") -> bytes:
    """Row-normalised confusion matrix (recall on the diagonal) with class names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, np.float64)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 1.2 + 0.6 * table.num_classes
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(table.num_classes), table.names, rotation=40, ha="right")
    ax.set_yticks(range(table.num_classes), table.names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(table.num_classes):
        for j in range(table.num_classes):
            if norm[i, j] >= 0.005:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title or "confusion matrix (rows normalised)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
