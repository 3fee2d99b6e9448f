"""Write synthetic faces as a raw dataset in the Kaggle layout (photos + id masks).

    python data_prep/write_synthetic_source.py OUT_DIR [--count 20] [--size 480]

Gives a raw set to try ``facepars.prepare --source=kaggle`` on, and photos for
``facepars.predict``, on a machine without the real datasets. Masks use the
Kaggle set's 18 ids (docs/data.md).
"""

from __future__ import annotations

import argparse
import os

from PIL import Image

from facepars.core.classes import translate_ids
from facepars.data import synthetic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--size", type=int, default=480, help="typical long side")
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    lut = translate_ids("synthetic", "kaggle")
    for split, count in (("train", args.count - args.count // 5), ("val", args.count // 5)):
        for d in ("image", "seg"):
            os.makedirs(os.path.join(args.out_dir, "content/All_data", split, d), exist_ok=True)
        for i in range(count):
            index = i if split == "train" else 10_000 + i
            h, w = synthetic.size_for(args.seed, index, args.size)
            image, mask = synthetic.render(args.seed, index, h, w)
            base = os.path.join(args.out_dir, "content/All_data", split)
            Image.fromarray(image).save(f"{base}/image/{index:05d}.jpg", quality=92)
            Image.fromarray(lut[mask]).save(f"{base}/seg/{index:05d}.png")
    print(f"wrote {args.count} pairs in the Kaggle layout under {args.out_dir}")


if __name__ == "__main__":
    main()
