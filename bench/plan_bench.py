"""Planning a Beam conversion of a million pairs: time, peak memory, graph size.

    python bench/plan_bench.py [--pairs 1000000]

What the driver does before any worker starts, on a simulated listing (the
synthetic source's references, one per pair, as a bucket listing would give):
plan the shards, write the plan file workers read their pairs from, build the
pipeline and serialize its graph (what Dataflow's job request carries). Prints
seconds per stage, the peak resident memory of this process, the plan file's
size and the graph's size against Dataflow's ~10 MB request limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    args = parser.parse_args()
    import apache_beam

    from facepars import prepare
    from facepars.data import beam, shards, sources

    out = tempfile.mkdtemp(prefix="plan_bench_")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = {}
    start = time.perf_counter()
    listing = {"train": [sources.SyntheticPair(f"synthetic/0/{n}", 0, n, 320, 320)
                         for n in range(args.pairs)]}
    times["listing (simulated)"] = time.perf_counter() - start
    start = time.perf_counter()
    plan = shards.plan_shards(listing, 512, seed=0)
    times["plan shards"] = time.perf_counter() - start
    cfg = prepare.PrepareConfig(output_dir=out, num_examples=8)
    job = shards.plan_job(cfg)
    job = dataclasses.replace(job, plan=plan, pending=plan)
    start = time.perf_counter()
    plan_path, entries = beam.write_plan(job.pending, job.parts_dir)
    times["write plan file"] = time.perf_counter() - start
    start = time.perf_counter()
    pipeline = apache_beam.Pipeline()
    beam.build(pipeline, job, plan_path, entries)
    graph = len(pipeline.to_runner_api().SerializeToString())
    times["build + serialize graph"] = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for stage, seconds in times.items():
        print(f"{stage:24s} {seconds:6.1f} s")
    print(f"peak memory: {peak / 1024:.0f} MB (after importing TensorFlow and Beam: "
          f"{base / 1024:.0f} MB)")
    print(f"plan file: {os.path.getsize(plan_path) / 1e6:.0f} MB for {len(entries)} shards")
    print(f"graph: {graph / 1e3:.0f} kB ({graph / 10e6:.3%} of Dataflow's 10 MB request limit)")


if __name__ == "__main__":
    main()
