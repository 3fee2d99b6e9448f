r"""Check what arrived: pairs per split, and a few raw masks drawn through the source's table.

    python data_prep/inspect_raw.py --source=kaggle --input_dir=DIR \
        [--taxonomy=seed8] [--out=raw.png]

Prints the pair count per split and any pairing problems, and writes a picture of
the first few photos with their masks remapped to the taxonomy (the same lookup
table prepare uses), so a wrong table or layout shows at a glance.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image

from facepars.core import visualize
from facepars.core.classes import SOURCE_TABLES, TAXONOMIES
from facepars.core.imaging import geometry, resize_image, resize_mask
from facepars.data import sources


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, choices=list(sources.FILE_SOURCES))
    parser.add_argument("--input_dir", required=True)
    parser.add_argument("--taxonomy", default="seed8", choices=list(TAXONOMIES))
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--out", default="raw_overlays.png")
    args = parser.parse_args(argv)
    pairs, bad = sources.list_source(args.source, args.input_dir)
    for split, items in pairs.items():
        print(f"{split}: {len(items)} pairs")
    for problem in bad[:20]:
        print(f"  problem: {problem}")
    if len(bad) > 20:
        print(f"  ... and {len(bad) - 20} more problems")
    table = TAXONOMIES[args.taxonomy].table
    lut, _ = SOURCE_TABLES[args.source].lookup_table(TAXONOMIES[args.taxonomy])
    tiles = []
    for ref in [p for items in pairs.values() for p in items][:args.count]:
        photo, raw = ref.load()
        geo_img, geo_mask = geometry(*photo.shape[:2], 256, "pad"), geometry(*raw.shape, 256, "pad")
        small, labels = resize_image(photo, geo_img), resize_mask(raw, geo_mask, lut=lut)
        tiles.append(np.concatenate([small, visualize.overlay(small, labels, table)], 0))
    if tiles:
        Image.fromarray(np.concatenate(tiles, 1)).save(args.out)
        print(f"overlays of {len(tiles)} raw masks through the {args.source} table: {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
