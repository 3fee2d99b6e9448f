"""Launch-to-first-step time of ``facepars.train``: a data set 100x the size against
the small one.

    python bench/startup_bench.py [--records 200] [--scale 100] [--rounds 3]

Prepares (once, cached in bench/_work/) a small synthetic data set, then makes a
copy 100x its size by linking its train shards 100 times under new names (the
same bytes: as many files and records as a 100x set, at no disk cost) with a
manifest that lists them all. Each round launches ``python -m facepars.train``
on each, in alternating order, and times from the launch to the log line of the
first finished step. The ratio large / small is the target (within 1.10).

A third row runs the large set with ``--verify_data`` (every shard hashed at
start, which train did by default before the verification stamp), to show what
the cheap start-up check saves.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from common import WORK

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_set(records: int) -> str:
    from facepars import prepare
    out = os.path.join(WORK, f"startup_{records}")
    if not os.path.exists(os.path.join(out, "manifest.json")):
        prepare.run(prepare.PrepareConfig(output_dir=out, num_examples=records, image_size=128,
                                          shard_size=25, synthetic_size=160, workers=2,
                                          overwrite=True))
    return out


def scaled_set(small: str, scale: int) -> str:
    """``small`` with its train split linked ``scale`` times: scale x the files and records."""
    out = f"{small}_x{scale}"
    if os.path.exists(os.path.join(out, "manifest.json")):
        return out
    os.makedirs(out, exist_ok=True)
    manifest = json.load(open(os.path.join(small, "manifest.json")))
    train = manifest["splits"]["train"]
    copies = []
    count = scale * len(train["shards"])
    for k in range(scale):
        for i, shard in enumerate(train["shards"]):
            name = f"train-{k * len(train['shards']) + i:05d}-of-{count:05d}.tfrecord"
            target = os.path.join(out, name)
            if not os.path.exists(target):
                os.link(os.path.join(small, shard["file"]), target)
            copies.append(dict(shard, file=name))
    for split, data in manifest["splits"].items():
        if split != "train":
            for shard in data["shards"]:
                if not os.path.exists(os.path.join(out, shard["file"])):
                    os.link(os.path.join(small, shard["file"]), os.path.join(out, shard["file"]))
    train.update(shards=copies, num_records=scale * train["num_records"],
                 class_pixels=[scale * v for v in train["class_pixels"]],
                 class_images=[scale * v for v in train["class_images"]])
    json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"))
    return out


def first_step_seconds(data_dir: str, model_dir: str, *extra: str) -> float:
    """Seconds from launching train to its 'first step ... done' log line."""
    args = [sys.executable, "-m", "facepars.train", "--config=smoke", f"--data_dir={data_dir}",
            f"--model_dir={model_dir}", "--strategy=one_device", "--config.overlay_images=0",
            "--config.epochs=1", "--config.steps_per_epoch=2", *extra]
    start = time.monotonic()
    proc = subprocess.Popen(args, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=dict(os.environ, PYTHONPATH=REPO))
    for line in proc.stderr:
        if "first step of this process done" in line:
            seconds = time.monotonic() - start
            proc.kill()
            proc.wait()
            return seconds
    proc.wait()
    raise RuntimeError(f"train exited {proc.returncode} before its first step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    small = small_set(args.records)
    large = scaled_set(small, args.scale)
    runs = os.path.join(WORK, "startup_runs")
    rows = {"small": [], "large": [], "large --verify_data": []}
    for r in range(args.rounds):
        for name, data, extra in (("small", small, ()), ("large", large, ()),
                                  ("large --verify_data", large, ("--verify_data",))):
            model_dir = os.path.join(runs, f"{r}_{name.replace(' ', '_')}")
            shutil.rmtree(model_dir, ignore_errors=True)
            rows[name].append(first_step_seconds(data, model_dir, *extra))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in rows.items()),
              flush=True)
    train_records = json.load(open(os.path.join(large, "manifest.json")))["splits"]["train"]
    print(f"large set: {len(train_records['shards'])} train shards, "
          f"{train_records['num_records']} records ({args.scale}x)")
    small_s = statistics.median(rows["small"])
    for name, values in rows.items():
        print(f"{name:22s} median {statistics.median(values):6.1f} s to the first step, "
              f"{statistics.median(values) / small_s:.2f}x small; per round "
              + ", ".join(f"{v / s:.2f}" for v, s in zip(values, rows["small"])))


if __name__ == "__main__":
    main()
