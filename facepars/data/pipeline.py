"""The tf.data input pipeline: shards -> uint8 batches on every replica.

Sharding across input pipelines (one per host) is by contiguous blocks of
records, not by files: the split's records, in the manifest's order, are cut
into ``num_pipelines`` blocks whose sizes differ by at most one, and each
pipeline reads only the shard files (or parts of files) its block covers. So
every record belongs to exactly one pipeline for any number of pipelines
against any number of files (a pod with more hosts than shards included), the
plan depends on nothing but the manifest (no seed, no reading order can make
two hosts disagree), and each host still reads about ``1 / num_pipelines`` of
the data. ``prepare --num_shards`` at a multiple of the host count keeps every
host on whole files.

Training order is a pure function of (seed, step), so a run that resumes at
step S reads exactly the records an uninterrupted run would have read from
step S on (facepars.data.training_order). After an input error, the records in
flight are checked to name the bad one (facepars.data.bad_records).

Then parallel parse and decode -> batch -> prefetch. Images and masks stay
uint8 (4 bytes a pixel, not the 3 x 4 + 8 x 4 of float images and one-hot
masks); normalisation, one-hot and augmentation happen on the device, inside
the step.

Training batches drop the remainder (static shapes, TPU-safe) and repeat.
Evaluation keeps every record exactly once: each input pipeline's stream is
padded with examples whose mask is all ``IGNORE_LABEL`` (they count in no loss
term and no metric) up to the same whole number of full batches on every
replica, so shapes stay static and no replica waits for another.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf
from absl import logging

from facepars.core.classes import IGNORE_LABEL
from facepars.core.errors import ConfigError
from facepars.data import schema
from facepars.data.training_order import Segment, TrainingOrder

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class InputConfig:
    global_batch_size: int = 32
    shuffle_buffer: int = 1024
    cycle_length: int = 8          # blocks read at once (a window: about shuffle_buffer records)
    cache: bool = False            # evaluation: cache decoded records in memory (small sets)
    take: int | None = None        # only the first N records of the split (smoke runs)
    seed: int = 0                  # training order: a pure function of (seed, step)
    start_step: int = 0            # training: begin where step start_step would read
    repeat: bool | None = None     # None: training repeats, evaluation makes one pass


def block(total: int, num_pipelines: int, pipeline_id: int) -> tuple[int, int]:
    """The records ``[start, end)`` of the split that pipeline ``pipeline_id`` reads."""
    return total * pipeline_id // num_pipelines, total * (pipeline_id + 1) // num_pipelines


def split_records(shards: list[schema.Shard], take: int | None) -> int:
    total = sum(s.num_records for s in shards)
    return total if take is None else min(take, total)


def pipeline_segments(shards: list[schema.Shard], num_pipelines: int, pipeline_id: int,
                      take: int | None = None) -> list[Segment]:
    """The file segments that make up one pipeline's block of records."""
    start, end = block(split_records(shards, take), num_pipelines, pipeline_id)
    segments, offset = [], 0
    for shard in shards:
        lo, hi = max(start, offset), min(end, offset + shard.num_records)
        if lo < hi:
            segments.append(Segment(shard.path, lo - offset, hi - lo))
        offset += shard.num_records
    return segments


def pipeline_records(shards: list[schema.Shard], num_pipelines: int,
                     take: int | None = None) -> list[int]:
    """How many records each input pipeline reads (for evaluation padding)."""
    total = split_records(shards, take)
    return [end - start for start, end in
            (block(total, num_pipelines, i) for i in range(num_pipelines))]


def _padding(count: int, image_size: int, with_ids: bool) -> tf.data.Dataset:
    element = {"image": tf.zeros((image_size, image_size, 3), tf.uint8),
               "mask": tf.fill((image_size, image_size), tf.constant(IGNORE_LABEL, tf.uint8))}
    if with_ids:
        element["source_id"] = tf.constant("")
    return tf.data.Dataset.from_tensors(element).repeat(count)


def records_per_step(cfg: InputConfig, num_pipelines: int) -> int:
    """Records one input pipeline feeds into one training step (all its replicas)."""
    return cfg.global_batch_size // num_pipelines


def make_dataset(manifest: schema.Manifest, split: str, training: bool, cfg: InputConfig,
                 input_context: tf.distribute.InputContext | None = None,
                 with_ids: bool = False) -> tf.data.Dataset:
    """Batches of ``{"image": uint8 (B,S,S,3), "mask": uint8 (B,S,S)}`` for one pipeline.

    ``B`` is the per-replica batch size when ``input_context`` is given (from
    ``strategy.distribute_datasets_from_function``), else the global batch size.
    ``with_ids`` adds ``source_id`` strings (host-side use only; TPUs take no strings).
    Every parallel stage keeps its order: the stream is reproducible, resumable
    and the same on every run.
    """
    shards = manifest.shards(split)
    size = manifest.image_size
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    batch = (input_context.get_per_replica_batch_size(cfg.global_batch_size)
             if input_context else cfg.global_batch_size)
    segments = pipeline_segments(shards, num_pipelines, pipeline_id, cfg.take)
    share = sum(s.count for s in segments)
    if training and share < batch:
        raise ConfigError(f"{split}: input pipeline {pipeline_id} of {num_pipelines} gets "
                         f"{share} records, fewer than its batch of {batch}")
    if num_pipelines > 1:
        logging.info("%s: input pipeline %d of %d reads %d records from %d file segment(s)",
                     split, pipeline_id, num_pipelines, share, len(segments))

    def parse(serialized):
        example = schema.parse_example(serialized, size)
        if not with_ids:
            example.pop("source_id")
        return example

    repeat = training if cfg.repeat is None else cfg.repeat
    if training:
        order = TrainingOrder(segments, cfg, pipeline_id)
        start = cfg.start_step * records_per_step(cfg, num_pipelines)
        examples = _decode(order.records(start, repeat), parse)
    else:
        examples = _decode(_read_in_order(segments, cfg), parse)
        if cfg.cache:
            examples = examples.cache()
        replicas_here = input_context.num_replicas_in_sync // num_pipelines if input_context else 1
        rounds = eval_steps(manifest, split, cfg, num_pipelines)
        examples = examples.concatenate(
            _padding(rounds * batch * replicas_here - share, size, with_ids))
    batches = examples.batch(batch, drop_remainder=True, num_parallel_calls=AUTOTUNE,
                             deterministic=True)
    if repeat and not training:  # whole padded passes, each exactly eval_steps long
        batches = batches.repeat()
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_optimization.map_parallelization = True
    return batches.with_options(options).prefetch(AUTOTUNE)


def _read_in_order(segments: list[Segment], cfg: InputConfig) -> tf.data.Dataset:
    """The serialized records of these file segments, in manifest order."""
    files = tf.data.Dataset.from_tensor_slices((  # typed: a pipeline may have no segment
        tf.constant([s.path for s in segments], tf.string),
        tf.constant([s.skip for s in segments], tf.int64),
        tf.constant([s.count for s in segments], tf.int64)))
    return files.interleave(
        lambda path, skip, count: tf.data.TFRecordDataset(path).skip(skip).take(count),
        cycle_length=max(1, min(cfg.cycle_length, len(segments))), block_length=1 << 30,
        num_parallel_calls=AUTOTUNE, deterministic=True)


def _decode(records: tf.data.Dataset, parse) -> tf.data.Dataset:
    return records.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)


def first_records(manifest: schema.Manifest, split: str, count: int):
    """The first ``count`` records of a split (file order), as numpy uint8 images and masks:
    the same examples on every call (TensorBoard overlays, export parity, calibration)."""
    count = min(count, manifest.num_records(split))
    if count <= 0:
        size = manifest.image_size
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, size, size), np.uint8)
    batch = next(iter(make_dataset(manifest, split, False,
                                   InputConfig(global_batch_size=count, take=count))))
    return batch["image"].numpy(), batch["mask"].numpy()


def eval_steps(manifest: schema.Manifest, split: str, cfg: InputConfig,
               num_pipelines: int = 1) -> int:
    """Steps of one evaluation pass: full batches on every replica, every record once."""
    per_round = cfg.global_batch_size // num_pipelines
    counts = pipeline_records(manifest.shards(split), num_pipelines, cfg.take)
    return max(1, math.ceil(max(counts) / per_round))


def distributed_dataset(strategy: tf.distribute.Strategy, manifest: schema.Manifest, split: str,
                        training: bool, cfg: InputConfig, with_ids: bool = False):
    """One pipeline per worker, each batch going to one replica (the global batch split
    by ``input_context.get_per_replica_batch_size``)."""
    if cfg.global_batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"global batch {cfg.global_batch_size} does not split over "
                         f"{strategy.num_replicas_in_sync} replicas")
    return strategy.distribute_datasets_from_function(
        lambda ctx: make_dataset(manifest, split, training, cfg, ctx, with_ids))
