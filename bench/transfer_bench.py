"""Fine-tuning against training from scratch, on a few hundred faces of a new class table.

    python bench/transfer_bench.py [--faces 400] [--steps 300] [--pretrain_steps 600]

1. Pre-train: the smoke model on ``--pretrain_faces`` synthetic faces in seed8.
2. A new task: ``--faces`` other synthetic faces (another seed) in seed8_hair, one
   class more (hair), as a team's own few hundred labelled photos would be.
3. The same run on it twice, ``--steps`` steps each, same config and seed: from
   scratch, and ``train --init_from`` the pre-trained run (every module; the
   classifier's rows carried by class name, hair's new) with the backbone frozen
   for ``--freeze`` steps.

Every step of it is the command line a user runs (prepare, train), in subprocesses.
Prints the validation face mIoU of both every ``--eval_every`` steps, and the steps
each needs to reach from-scratch's final figure; their ratio is the result (goal: the
fine-tuned run needs at most a third of the steps).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def cli(*args: str) -> float:
    """Run ``python -m facepars.<args>``; returns its wall time. Fails loudly."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], env=ENV, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(args[:1])} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def curve(model_dir: str, steps_per_epoch: int) -> list[tuple[int, float]]:
    """(step, validation face mIoU) after every epoch of a run."""
    with open(os.path.join(model_dir, "history.csv")) as f:
        return [((int(row["epoch"]) + 1) * steps_per_epoch, float(row["val_miou_face"]))
                for row in csv.DictReader(f)]


def steps_to_reach(points: list[tuple[int, float]], target: float) -> int | None:
    return next((step for step, value in points if value >= target), None)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--pretrain_faces", type=int, default=2000)
    p.add_argument("--pretrain_steps", type=int, default=600)
    p.add_argument("--faces", type=int, default=400)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--eval_every", type=int, default=20)
    p.add_argument("--freeze", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work_dir", default=None)
    args = p.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="transfer_bench_")
    print(f"work dir {work}")
    common = ["--config=smoke", f"--config.batch_size={args.batch}",
              f"--config.steps_per_epoch={args.eval_every}", f"--config.seed={args.seed}",
              "--config.overlay_images=0"]

    seed8, hair = os.path.join(work, "seed8"), os.path.join(work, "seed8_hair")
    for out, faces, taxonomy, seed in ((seed8, args.pretrain_faces, "seed8", args.seed),
                                       (hair, args.faces, "seed8_hair", args.seed + 1000)):
        if not os.path.exists(os.path.join(out, "manifest.json")):
            cli("facepars.prepare", "--source=synthetic", f"--num_examples={faces}",
                f"--taxonomy={taxonomy}", f"--seed={seed}", f"--image_size={args.size}",
                f"--output_dir={out}", "--align=landmarks")
    pre = os.path.join(work, "pretrained")
    if not os.path.exists(os.path.join(pre, "best.keras")):
        seconds = cli("facepars.train", *common, f"--data_dir={seed8}", f"--model_dir={pre}",
                      f"--config.epochs={args.pretrain_steps // args.eval_every}")
        print(f"pre-trained {args.pretrain_steps} steps on {args.pretrain_faces} seed8 faces "
              f"in {seconds:.0f} s; val face mIoU {curve(pre, args.eval_every)[-1][1]:.4f}")

    runs = {}
    for name, extra in (("scratch", []),
                        ("fine-tuned", [f"--init_from={pre}", "--init_modules=all",
                                        f"--config.freeze_backbone_steps={args.freeze}"])):
        model_dir = os.path.join(work, name)
        seconds = cli("facepars.train", *common, *extra, f"--data_dir={hair}",
                      f"--model_dir={model_dir}",
                      f"--config.epochs={args.steps // args.eval_every}")
        runs[name] = curve(model_dir, args.eval_every)
        print(f"{name}: {args.steps} steps in {seconds:.0f} s")

    print(f"\nvalidation face mIoU on {args.faces} seed8_hair faces ({args.size} px, "
          f"batch {args.batch})")
    print(f"{'step':>6}{'scratch':>12}{'fine-tuned':>12}")
    for (step, a), (_, b) in zip(runs["scratch"], runs["fine-tuned"]):
        print(f"{step:>6}{a:>12.4f}{b:>12.4f}")
    target = runs["scratch"][-1][1]
    need = {n: steps_to_reach(points, target) for n, points in runs.items()}
    print(f"\nfrom scratch's final figure, {target:.4f}: reached after {need['scratch']} steps "
          f"from scratch, {need['fine-tuned']} fine-tuned")
    if need["fine-tuned"] and need["scratch"]:
        print(f"steps ratio fine-tuned / scratch: {need['fine-tuned'] / need['scratch']:.3f} "
              "(goal <= 0.333)")
    else:
        print("the fine-tuned run never reached it")


if __name__ == "__main__":
    main()
