"""A test hook for every Python process of a prepare job (Beam's workers included).

With ``PYTHONPATH`` holding this directory and ``FACEPARS_TEST_HOLD_SHARDS=N``,
``write_shard`` (facepars.data.shards), once a shard is in place and at least N
are in the output directory, touches ``FACEPARS_TEST_HOLD_MARKER`` and waits
there until the process is killed. A test then kills the job mid-run however
fast or slow the machine is, instead of racing it: at most N + workers - 1
shards are written.
"""

import os

if os.environ.get("FACEPARS_TEST_HOLD_SHARDS"):
    import glob
    import time

    from facepars.data import shards

    _write_shard = shards.write_shard

    def _held_write_shard(shard, results, cfg, *args, **kwargs):
        stats = _write_shard(shard, results, cfg, *args, **kwargs)
        written = len(glob.glob(os.path.join(cfg.output_dir, "*.tfrecord")))
        if written >= int(os.environ["FACEPARS_TEST_HOLD_SHARDS"]):
            open(os.environ["FACEPARS_TEST_HOLD_MARKER"], "a").close()
            while True:
                time.sleep(1)
        return stats

    shards.write_shard = _held_write_shard
