"""How long a preempted run takes to be gone: SIGTERM to ``train``, then the seconds
until the process has ended (a spot VM powers off about 30 s after its notice).

    python bench/preempt_bench.py [--runs 5] [--after 20] [--data_dir DIR]

Each run is the smoke config on one device, one 600-step epoch, SIGTERMed
``--after`` seconds after its first step (the input pipeline mid-window). Prints
each run's seconds from the signal to its end, with its exit code (143: stopped
and saved), and the worst against the 30 s grace.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def one_run(data_dir: str, model_dir: str, after: float) -> tuple[float, int]:
    log = open(model_dir + ".err", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "facepars.train", "--config=smoke", "--config.epochs=1",
         "--config.steps_per_epoch=600", "--config.overlay_images=0", f"--data_dir={data_dir}",
         f"--model_dir={model_dir}"], env=ENV, stdout=subprocess.DEVNULL, stderr=log)
    while "first step of this process done" not in open(log.name).read():
        if proc.poll() is not None:
            sys.exit(f"train exited {proc.returncode} before its first step:\n"
                     + open(log.name).read()[-3000:])
        time.sleep(0.1)
    time.sleep(after)
    proc.send_signal(signal.SIGTERM)
    start = time.perf_counter()
    code = proc.wait()
    return time.perf_counter() - start, code


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--after", type=float, default=20.0)
    p.add_argument("--data_dir", default=None, help="prepared data (default: 2,000 synthetic "
                                                    "faces at 64 px, made here)")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="preempt_bench_")
    data_dir = args.data_dir
    if data_dir is None:
        data_dir = os.path.join(work, "data")
        subprocess.run([sys.executable, "-m", "facepars.prepare", "--source=synthetic",
                        "--num_examples=2000", "--image_size=64", f"--output_dir={data_dir}"],
                       env=ENV, check=True, capture_output=True)
    worst = 0.0
    for i in range(args.runs):
        seconds, code = one_run(data_dir, os.path.join(work, f"run{i}"), args.after)
        worst = max(worst, seconds)
        print(f"run {i}: gone {seconds:.2f} s after SIGTERM, exit code {code}", flush=True)
    print(f"worst {worst:.2f} s of a spot VM's 30 s ({worst / 30:.2f} of it)")


if __name__ == "__main__":
    main()
