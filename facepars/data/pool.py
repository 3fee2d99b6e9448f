"""The local runner of ``prepare``: a process pool on this machine writes the shards.

The pool converts pairs (decode, remap, resize, encode: facepars.data.convert)
in parallel; this process writes them, shard after shard in plan order, with
the shard library's ``write_shard`` (facepars.data.shards), as the Beam runner
does on its workers.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver

from facepars.core.progress import Progress
from facepars.data import convert, shards


def start_worker_server():
    """Boot the forkserver that conversion workers fork from; returns at once.

    A forkserver, because workers forked from this process would inherit
    TensorFlow's threads and memory. Booting it first lets its interpreter start
    and import the converter while this process lists the source and checks the
    output directory, instead of after.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["facepars.data.convert"])
    multiprocessing.forkserver.ensure_running()
    return ctx


def write_shards(job: shards.Job, ctx) -> None:
    """Convert the pending pairs in a process pool (or in-process) and write their shards."""
    cfg = job.cfg
    todo = [ref for shard in job.pending for ref in shard["refs"]]
    progress = Progress("prepare", len(todo), "pairs")
    pool = None
    try:
        if ctx is not None and len(todo) > 1:
            pool = ctx.Pool(cfg.workers, convert.init_worker, (job.spec,))
            results = pool.imap(convert.convert_in_worker, todo, chunksize=2)
        else:
            convert.keep_freed_memory()
            results = (convert.convert(ref, job.spec) for ref in todo)
        for shard in job.pending:
            job.stats[shard["file"]] = shards.write_shard(
                shard, results, cfg, job.parts_dir, job.spec.num_classes, progress)
    finally:
        if pool is not None:
            pool.terminate()
