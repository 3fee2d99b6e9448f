"""Conversion speed: facepars.prepare with 1 worker, with all workers, and the seed's loop.

    python bench/prepare_bench.py [--pairs 400] [--workers 2]

Generates (once, cached in bench/_work/) a Kaggle-layout set of large photos,
1000-1500 px, portrait and landscape, JPEG images and PNG masks. Then, in one run
on the same files, measures pairs/s of

  1. facepars conversion with 1 worker (in-process),
  2. facepars conversion with --workers processes,
  3. the seed's way: one process, cv2 read, remap, resize, write a PNG pair per image,

and prints the ratios 2/1 (target >= 1.7 with 2 workers on 2 cores) and 2/3.

This machine is shared and its speed drifts by tens of percent within a minute,
so the three are measured in alternating rounds (--rounds, default 5) and each
rate is the median over its rounds; every round's figures are printed too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from common import WORK, make_source  # noqa: E402
from facepars.classes import SOURCE_TABLES, TAXONOMIES  # noqa: E402

# facepars.data.shards (and with it TensorFlow) is imported inside functions:
# worker processes re-import this script as __mp_main__, and should stay light.


def facepars_rate(root: str, workers: int, pairs: int) -> float:
    """One conversion in a fresh process, as a user's run: it pays for booting the workers."""
    out = subprocess.run([sys.executable, __file__, "--measure", root, str(workers), str(pairs)],
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def measure(root: str, workers: int, pairs: int) -> None:
    from facepars.data import shards  # TensorFlow's import is not timed
    out = tempfile.mkdtemp(prefix="prepare_bench_")
    try:
        start = time.perf_counter()
        shards.run(shards.PrepareConfig(output_dir=out, source="kaggle", input_dir=root,
                                        workers=workers, shard_size=64))
        print(pairs / (time.perf_counter() - start))
    finally:
        shutil.rmtree(out)


def seed_rate(root: str, pairs: int) -> float:
    """The seed's preprocessing: cv2 in one process, a resized PNG pair per image."""
    import cv2
    lut, _ = SOURCE_TABLES["kaggle"].lookup_table(TAXONOMIES["seed8"])
    base = os.path.join(root, "content/All_data/train")
    out = tempfile.mkdtemp(prefix="seed_bench_")
    try:
        start = time.perf_counter()
        for name in sorted(os.listdir(f"{base}/image")):
            stem = os.path.splitext(name)[0]
            image = cv2.imread(f"{base}/image/{name}")
            mask = cv2.imread(f"{base}/seg/{stem}.png", cv2.IMREAD_UNCHANGED)
            mask = lut[mask if mask.ndim == 2 else mask[..., 0]]
            cv2.imwrite(f"{out}/{stem}.png", cv2.resize(image, (256, 256)))
            cv2.imwrite(f"{out}/{stem}_seg.png",
                        cv2.resize(mask, (256, 256), interpolation=cv2.INTER_NEAREST))
        return pairs / (time.perf_counter() - start)
    finally:
        shutil.rmtree(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)  # root workers pairs
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure[0], int(args.measure[1]), int(args.measure[2]))
    print(f"source: {args.pairs} pairs, 1000-1500 px (cached in {WORK})", flush=True)
    root = make_source(os.path.join(WORK, f"kaggle_{args.pairs}"), args.pairs)
    rounds = []
    for i in range(args.rounds):
        rounds.append((facepars_rate(root, 1, args.pairs), facepars_rate(root, args.workers, args.pairs),
                       seed_rate(root, args.pairs)))
        print(f"round {i + 1}: 1 worker {rounds[-1][0]:.1f}, {args.workers} workers "
              f"{rounds[-1][1]:.1f}, seed loop {rounds[-1][2]:.1f} pairs/s", flush=True)
    one, many, seed = (statistics.median(r) for r in zip(*rounds))
    print(f"medians over {args.rounds} rounds:")
    print(f"facepars, 1 worker:        {one:7.2f} pairs/s")
    print(f"facepars, {args.workers} workers:       {many:7.2f} pairs/s")
    print(f"seed loop (cv2, PNG pair): {seed:7.2f} pairs/s")
    print(f"ratio {args.workers} workers / 1 worker: {many / one:.2f}x  (target >= 1.7 with 2); "
          f"per round {', '.join(f'{r[1] / r[0]:.2f}' for r in rounds)}")
    print(f"ratio {args.workers} workers / seed loop: {many / seed:.2f}x")


if __name__ == "__main__":
    main()
