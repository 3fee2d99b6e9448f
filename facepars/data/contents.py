"""What a prepared data set holds (records, pixels and images per class and split), as
a terminal table and a bar chart: what prepare prints and verify draws."""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf

from facepars.core.classes import ClassTable


def _table(manifest: dict) -> ClassTable:
    return ClassTable.from_json(manifest["class_table"])


def summary(manifest: dict) -> str:
    """Records per split, then pixels and images per class and split."""
    table = _table(manifest)
    splits = manifest["splits"]
    lines = [f"source {manifest['source']}, taxonomy {table.name}, "
             f"{manifest['image_size']}x{manifest['image_size']} ({manifest['resize']}), "
             + ", ".join(f"{k}: {v['num_records']} records in {len(v['shards'])} shards"
                         for k, v in splits.items())]
    if manifest.get("skipped"):
        lines.append(f"skipped {len(manifest['skipped'])} bad pairs (listed in the manifest):")
        lines += [f"  {s['error']}" for s in manifest["skipped"][:20]]
    header = f"{'class':<16}" + "".join(f"{f'{k} pixels':>16}{f'{k} images':>14}" for k in splits)
    lines += ["", header, "-" * len(header)]
    for c, name in enumerate(table.names):
        row = f"{c} {name:<14}"
        for split in splits.values():
            total = max(sum(split["class_pixels"]), 1)
            row += f"{split['class_pixels'][c] / total:>15.2%} {split['class_images'][c]:>13d}"
        lines.append(row)
    return "\n".join(lines)


def distribution_chart(manifest: dict, path: str) -> None:
    """Two bar charts like the notebook's: share of pixels and share of images per class."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = _table(manifest)
    splits = manifest["splits"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(table.num_classes)
    width = 0.8 / len(splits)
    colours = table.palette() / 255.0
    for i, (name, split) in enumerate(splits.items()):
        pixels = np.array(split["class_pixels"], float)
        images = np.array(split["class_images"], float)
        for ax, values in ((axes[0], pixels / max(pixels.sum(), 1)),
                           (axes[1], images / max(split["num_records"], 1))):
            ax.bar(x + (i - (len(splits) - 1) / 2) * width, values, width, label=name,
                   color=colours, edgecolor="black", alpha=1.0 - 0.25 * i, linewidth=0.5)
    for ax, title in ((axes[0], "share of labelled pixels"),
                      (axes[1], "share of images containing the class")):
        ax.set_xticks(x, table.names, rotation=35, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_ylim(0, 1.05)
    axes[1].legend(title="split (darker first)", loc="lower left", framealpha=0.9)
    fig.suptitle(f"{manifest['source']} -> {table.name}, "
                 + ", ".join(f"{k} {v['num_records']}" for k, v in splits.items()))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buf.getvalue())
