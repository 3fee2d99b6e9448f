"""A photo corpus: ``predict`` locally against ``predict --runner=beam`` (FnApiRunner).

    python bench/corpus_bench.py [--photos 48] [--faces whole]

``--photos`` synthetic 640x480 JPEGs, the demo's model shape (LR-ASPP width 0.5,
128 px, random weights: speed does not depend on them). Times the local run and
Beam's FnApiRunner with 1 process (in memory) and 2 processes, each writing
every output, and prints photos/s and each one's ratio to the local run. Beam
start-up (pipeline construction, worker processes, model load per worker) is
included: it is what a user waits for.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from PIL import Image
from predict_bench import make_run

from facepars import predict_lib
from facepars.data import synthetic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--faces", default="whole", choices=["whole", "detect"])
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="corpus_bench_")
    run = make_run(root, "lraspp_mobilenetv3", 0.5, 128)
    photos = os.path.join(root, "photos")
    os.makedirs(photos)
    for i in range(args.photos):
        image = synthetic.compose(9, i, 480, 640, 1 + i % 3)[0]
        Image.fromarray(image).save(os.path.join(photos, f"{i:04d}.jpg"), quality=90)
    rows = {
        "local": lambda out: predict_lib.run(run, [photos], out, faces=args.faces),
        "beam, FnApiRunner, 1 process": lambda out: predict_lib.run_on_beam(
            run, [photos], out, faces=args.faces, workers=1),
        "beam, FnApiRunner, 2 processes": lambda out: predict_lib.run_on_beam(
            run, [photos], out, faces=args.faces, workers=2),
    }
    rates = {}
    for name, fn in rows.items():
        start = time.perf_counter()
        summary, _ = fn(os.path.join(root, name.replace(" ", "_").replace(",", "")))
        assert len(summary) == args.photos, name
        rates[name] = args.photos / (time.perf_counter() - start)
    print(f"\n{args.photos} photos of 640x480, --faces={args.faces}")
    for name, value in rates.items():
        print(f"{name:34s}{value:8.1f} photos/s{value / rates['local']:8.2f}x")


if __name__ == "__main__":
    main()
