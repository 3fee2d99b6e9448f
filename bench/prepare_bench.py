"""Conversion speed: facepars.prepare locally (1 and N workers), on Beam, and the notebook's loop.

    python bench/prepare_bench.py [--pairs 400] [--workers 2]

Generates (once, cached in bench/_work/) a Kaggle-layout set of large photos,
1000-1500 px, portrait and landscape, JPEG images and PNG masks. Then, in one run
on the same files, measures pairs/s of

  1. facepars conversion with 1 worker (in-process),
  2. facepars conversion with --workers processes,
  3. the notebook's way: one process, cv2 read, remap, resize, write a PNG pair per image,
  4. --runner=beam on Beam's local FnApiRunner with --workers processes (when the
     facepars[beam] extra is installed),

and prints the ratios 2/1 (target >= 1.7 with 2 workers on 2 cores), 2/3, 4/2
(Beam's overhead on one machine) and the CPU seconds a pair costs (from run 1),
the figure to size a Dataflow job by.

This machine is shared and its speed drifts by tens of percent within a minute,
so the three are measured in alternating rounds (--rounds, default 5) and each
rate is the median over its rounds; every round's figures are printed too.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from facepars.core.classes import SOURCE_TABLES, TAXONOMIES

from common import WORK, make_source

# facepars.data.shards (and with it TensorFlow) is imported inside functions:
# worker processes re-import this script as __mp_main__, and should stay light.


def facepars_rate(root: str, workers: int, pairs: int, runner: str = "local"
                  ) -> tuple[float, float]:
    """One conversion in a fresh process, as a user's run: it pays for booting the workers.

    Returns pairs/s and this process's CPU seconds per pair (meaningful with 1 worker).
    """
    out = subprocess.run([sys.executable, __file__, "--measure", root, str(workers), str(pairs),
                          runner], check=True, capture_output=True, text=True).stdout
    rate, cpu = out.split()[-2:]
    return float(rate), float(cpu)


def measure(root: str, workers: int, pairs: int, runner: str) -> None:
    from facepars import prepare
    from facepars.data import shards  # noqa: F401  TensorFlow's import is not timed
    out = tempfile.mkdtemp(prefix="prepare_bench_")
    try:
        start, cpu = time.perf_counter(), time.process_time()
        prepare.run(prepare.PrepareConfig(output_dir=out, source="kaggle", input_dir=root,
                                          workers=workers, shard_size=64, runner=runner))
        print(pairs / (time.perf_counter() - start), (time.process_time() - cpu) / pairs)
    finally:
        shutil.rmtree(out)


def seed_rate(root: str, pairs: int) -> float:
    """The notebook's preprocessing: cv2 in one process, a resized PNG pair per image."""
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
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)  # root workers pairs runner
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure[0], int(args.measure[1]), int(args.measure[2]), args.measure[3])
    with_beam = importlib.util.find_spec("apache_beam") is not None
    print(f"source: {args.pairs} pairs, 1000-1500 px (cached in {WORK})", flush=True)
    root = make_source(os.path.join(WORK, f"kaggle_{args.pairs}"), args.pairs)
    rounds, cpu = [], []
    for i in range(args.rounds):
        (one, one_cpu), (many, _) = (facepars_rate(root, w, args.pairs) for w in (1, args.workers))
        beam = (
            facepars_rate(root, args.workers, args.pairs, "beam")[0] if with_beam else float("nan")
        )
        rounds.append((one, many, seed_rate(root, args.pairs), beam))
        cpu.append(one_cpu)
        print(f"round {i + 1}: 1 worker {one:.1f}, {args.workers} workers {many:.1f}, seed loop "
              f"{rounds[-1][2]:.1f}, beam {args.workers} workers {beam:.1f} pairs/s", flush=True)
    one, many, seed, beam = (statistics.median(r) for r in zip(*rounds))
    print(f"medians over {args.rounds} rounds:")
    print(f"facepars, 1 worker:        {one:7.2f} pairs/s")
    print(f"facepars, {args.workers} workers:       {many:7.2f} pairs/s")
    print(f"seed loop (cv2, PNG pair): {seed:7.2f} pairs/s")
    print(f"ratio {args.workers} workers / 1 worker: {many / one:.2f}x  (target >= 1.7 with 2); "
          f"per round {', '.join(f'{r[1] / r[0]:.2f}' for r in rounds)}")
    print(f"ratio {args.workers} workers / seed loop: {many / seed:.2f}x")
    if with_beam:
        print(f"beam FnApiRunner, {args.workers} workers: {beam:7.2f} pairs/s")
        print(f"ratio beam / local pool, {args.workers} workers each: {beam / many:.2f}x; "
              f"per round {', '.join(f'{r[3] / r[1]:.2f}' for r in rounds)}")
        print(f"beam's extra wall time per job: {args.pairs / beam - args.pairs / many:.1f} s "
              "(pipeline set-up, worker start-up and teardown: fixed, not per pair)")
    print(f"CPU per pair (1 worker, whole process): {1000 * statistics.median(cpu):.1f} ms")


if __name__ == "__main__":
    main()
