"""Naming the bad record behind an input error: only the records in flight are read again.

tf.data's own errors ("corrupted record at 1234", a failed PNG decode) do not
say which file. The input order is a function of the step
(facepars.data.training_order), so after an error at a step only the few
windows the pipeline can have been reading then are checked, whatever the size
of the data set.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from facepars.core.errors import FaceparsError
from facepars.data import integrity, schema
from facepars.data.pipeline import (
    InputConfig,
    pipeline_segments,
    records_per_step,
)
from facepars.data.training_order import Segment, TrainingOrder

# How far ahead of the step the input pipeline can be, in training windows (one
# being read, one queued, batches prefetched from the one before).
WINDOWS_IN_FLIGHT = 3


def find_bad_record(manifest: schema.Manifest, split: str, training: bool, cfg: InputConfig,
                    num_pipelines: int, pipeline_id: int, step: int) -> str | None:
    """After an input error at ``step``: the bad record it came from, named by shard
    and index, or None if none of the records in flight is bad (then the error is
    not a data error).

    Only the records this pipeline can have been reading around that step are
    decoded again (a few windows), whatever the size of the data set: the
    order is a function of the step.
    """
    segments = pipeline_segments(manifest.shards(split), num_pipelines, pipeline_id, cfg.take)
    position = step * records_per_step(cfg, num_pipelines)
    if training:
        suspects = TrainingOrder(segments, cfg, pipeline_id).blocks_near(
            position % max(1, sum(s.count for s in segments)), WINDOWS_IN_FLIGHT)
    else:
        span = WINDOWS_IN_FLIGHT * max(cfg.shuffle_buffer, records_per_step(cfg, num_pipelines))
        suspects, offset = [], 0
        for s in segments:
            lo, hi = max(position, offset), min(position + span, offset + s.count)
            if lo < hi:
                suspects.append(Segment(s.path, s.skip + lo - offset, hi - lo))
            offset += s.count
    for block in suspects:
        _, problem = integrity.check_records(block.path, block.skip, block.count,
                                             manifest.image_size,
                                             manifest.class_table.num_classes)
        if problem:
            return problem
    return None


@contextlib.contextmanager
def naming_bad_records(manifest: schema.Manifest, split: str, training: bool, cfg: InputConfig,
                       step, num_pipelines: int = 1, pipeline_id: int = 0):
    """Turn a data error from inside tf.data into one that names the shard and record.

    tf.data's own errors ("corrupted record at 1234", a failed PNG decode) do
    not say which file. ``step()`` gives the step being read when the error came
    (training step, or evaluation batch); only the records in flight around it
    are checked (``find_bad_record``). Anything else keeps its own traceback.
    """
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        problem = find_bad_record(manifest, split, training, cfg, num_pipelines, pipeline_id,
                                  step())
        if problem:
            raise CorruptShardError(problem) from e
        raise


class CorruptShardError(FaceparsError):
    """A shard that cannot be read; the message names it."""
