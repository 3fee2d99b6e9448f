"""The training record stream of one input pipeline, a pure function of (seed, step).

Training order is a pure function of (seed, step), so a run that resumes at
step S reads exactly the records an uninterrupted run would have read from
step S on, in the same order (``TrainingOrder``). Each pipeline cuts its
segments into blocks of at most ``shuffle_buffer / cycle_length`` records; a
pass over the pipeline's records is a seeded permutation of the blocks, taken
``cycle_length`` blocks at a time (a *window*, about ``shuffle_buffer``
records), each window read with a parallel interleave and then permuted as a
whole with a seed of its own. That is the TF Model Garden's shuffle-files ->
interleave -> shuffle-buffer recipe, with the buffer's randomness made
stateless: resuming at record ``r`` of a pass skips whole windows without
reading them and at most one window's records (as bytes, before decoding).
The passes follow each other without a gap; an epoch of ``steps_per_epoch``
steps need not end where a pass does.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Segment:
    """Records ``[skip, skip + count)`` of one shard file."""

    path: str
    skip: int
    count: int


def cut_blocks(segments: list[Segment], size: int) -> list[Segment]:
    """The segments cut into blocks of at most ``size`` records, in order."""
    return [Segment(s.path, s.skip + start, min(size, s.count - start))
            for s in segments for start in range(0, s.count, size)]


class TrainingOrder:
    """One input pipeline's training record stream, a pure function of (seed, position).

    Pass ``p`` over the pipeline's records permutes its blocks with a seed
    derived from ``(seed, pipeline, p)``; window ``w`` of the pass (blocks
    ``[w * C, (w + 1) * C)`` of that permutation, ``C = cycle_length``) is read
    with a parallel interleave and permuted as a whole with a seed derived from
    the pass seed and ``w``. The same TensorFlow ops compute the order in the
    input pipeline and, eagerly, on the host (``locate``, ``blocks_near``), so
    both agree by construction. TensorFlow keeps stateless random numbers fixed
    for a version on a device type (the input runs on the host CPU): resume a
    run with the TensorFlow it started with.
    """

    def __init__(self, segments: list[Segment], cfg, pipeline_id: int = 0):
        """``cfg``: the pipeline's InputConfig (its shuffle_buffer, cycle_length, seed)."""
        self.cycle = max(1, cfg.cycle_length)
        self.blocks = cut_blocks(segments, max(1, cfg.shuffle_buffer // self.cycle))
        self.num_blocks = len(self.blocks)
        self.windows_per_pass = max(1, -(-self.num_blocks // self.cycle))
        self.records_per_pass = sum(b.count for b in self.blocks)
        self.seed = tf.constant([cfg.seed, pipeline_id], tf.int64)
        self._paths = tf.constant([b.path for b in self.blocks], tf.string)
        self._skips = tf.constant([b.skip for b in self.blocks], tf.int64)
        self._counts = tf.constant([b.count for b in self.blocks], tf.int64)
        self._window_max = self.cycle * max([b.count for b in self.blocks], default=1)

    def _pass_seed(self, p):
        return tf.random.experimental.stateless_fold_in(self.seed, p)

    def _pass_order(self, p):
        """The permutation of the blocks in pass ``p``."""
        return tf.argsort(tf.random.stateless_uniform([self.num_blocks], self._pass_seed(p)))

    def _window_blocks(self, g):
        """Block indices of global window ``g`` (pass ``g // W``, window ``g % W``)."""
        g = tf.cast(g, tf.int64)
        p, w = g // self.windows_per_pass, g % self.windows_per_pass
        order = self._pass_order(p)
        lo = w * self.cycle
        return tf.cast(order[lo:tf.minimum(lo + self.cycle, self.num_blocks)], tf.int64), p, w

    def _window_records(self, g):
        """The serialized records of window ``g``, in their permuted order."""
        idx, p, w = self._window_blocks(g)
        blocks = tf.data.Dataset.from_tensor_slices(
            (tf.gather(self._paths, idx), tf.gather(self._skips, idx),
             tf.gather(self._counts, idx)))
        records = blocks.interleave(
            lambda path, skip, count: tf.data.TFRecordDataset(path).skip(skip).take(count),
            cycle_length=self.cycle, num_parallel_calls=self.cycle, deterministic=True)
        window = records.batch(self._window_max).get_single_element()
        seed = tf.random.experimental.stateless_fold_in(self._pass_seed(p), w)
        return tf.gather(window, tf.argsort(tf.random.stateless_uniform(tf.shape(window), seed)))

    def locate(self, position: int) -> tuple[int, int]:
        """(global window, records to skip in it) of stream position ``position``."""
        p, within = divmod(position, self.records_per_pass)
        counts = self._counts.numpy()[self._pass_order(tf.constant(p, tf.int64)).numpy()]
        ends = np.cumsum([counts[i:i + self.cycle].sum()
                          for i in range(0, self.num_blocks, self.cycle)])
        w = int(np.searchsorted(ends, within, side="right"))
        start = int(ends[w - 1]) if w else 0
        return p * self.windows_per_pass + w, within - start

    def records(self, start: int = 0, repeat: bool = True) -> tf.data.Dataset:
        """Serialized records from stream position ``start`` on (forever if ``repeat``,
        else to the end of that pass)."""
        if not self.num_blocks:
            return tf.data.Dataset.from_tensor_slices(tf.constant([], tf.string))
        first, skip = self.locate(start)
        last = (2 ** 62 if repeat
                else (start // self.records_per_pass + 1) * self.windows_per_pass)
        windows = tf.data.Dataset.range(first, last).map(
            self._window_records, num_parallel_calls=2, deterministic=True)
        return windows.unbatch().skip(skip)

    def blocks_near(self, position: int, windows: int) -> list[Segment]:
        """The blocks of the ``windows`` windows from the one holding ``position``:
        every record the pipeline can have had in flight around that position."""
        first, _ = self.locate(position)
        out = []
        for g in range(first, first + windows):
            out += [self.blocks[i] for i in self._window_blocks(g)[0].numpy()]
        return out
