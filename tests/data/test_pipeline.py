import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from facepars.core.classes import IGNORE_LABEL
from facepars.data import pipeline, schema
from facepars.data.pipeline import InputConfig
from facepars.data.training_order import TrainingOrder


def _ids(batches):
    ids = [i.decode() for b in batches for i in b["source_id"].numpy()]
    return [i for i in ids if i]


def test_training_batches_are_static_uint8_and_keep_every_class(synthetic_data):
    manifest = schema.Manifest.load(synthetic_data)
    ds = pipeline.make_dataset(manifest, "train", True, InputConfig(global_batch_size=8, seed=1))
    assert ds.element_spec["image"].shape == (8, 64, 64, 3)
    assert ds.element_spec["mask"].shape == (8, 64, 64)
    seen = set()
    for batch in ds.take(12):  # 96 records from a 64-record split: it repeats
        assert batch["image"].dtype == tf.uint8 and batch["mask"].dtype == tf.uint8
        values = np.unique(batch["mask"].numpy())
        assert set(values) <= set(range(8)) | {IGNORE_LABEL}
        seen |= set(values.tolist())
    assert seen == set(range(8))


@pytest.mark.parametrize("batch", [5, 8])
def test_evaluation_yields_every_record_exactly_once(synthetic_data, batch):
    manifest = schema.Manifest.load(synthetic_data)
    ds = pipeline.make_dataset(manifest, "val", False, InputConfig(global_batch_size=batch),
                               with_ids=True)
    batches = list(ds)
    ids = _ids(batches)
    assert sorted(ids) == sorted(set(ids)) and len(ids) == manifest.num_records("val")
    assert all(b["image"].shape[0] == batch for b in batches)
    padded = np.concatenate([b["mask"].numpy() for b in batches])[len(ids):]
    assert (padded == IGNORE_LABEL).all()


TOPOLOGIES = [(p, r) for p in (1, 2, 4) for r in (2, 4, 8) if r % p == 0]


@pytest.mark.parametrize("pipelines,replicas", TOPOLOGIES)
@pytest.mark.parametrize("split", ["train", "val"])  # 8 shard files, and 1
def test_input_topology_reads_every_record_once(synthetic_data, split, pipelines, replicas):
    """Input pipelines (hosts) x replicas, shard files more and fewer than pipelines,
    no seed (so nothing but the plan keeps hosts apart). Evaluation: every record
    exactly once, equal full batches on every replica, and a repeated pass exactly
    ``eval_steps`` long. Training: no record twice within an epoch on any host."""
    manifest = schema.Manifest.load(synthetic_data)
    total = manifest.num_records(split)
    per_replica, per_pipeline = 2, replicas // pipelines
    cfg = InputConfig(global_batch_size=per_replica * replicas, repeat=True)
    steps = pipeline.eval_steps(manifest, split, cfg, pipelines)
    seen = []
    for i in range(pipelines):
        ctx = tf.distribute.InputContext(pipelines, i, replicas)
        batches = list(pipeline.make_dataset(manifest, split, False, cfg, ctx, with_ids=True)
                       .take(2 * steps * per_pipeline))
        assert all(b["image"].shape[0] == per_replica for b in batches)
        first, second = batches[:steps * per_pipeline], batches[steps * per_pipeline:]
        assert _ids(first) == _ids(second)  # the second pass starts exactly at step eval_steps
        seen += _ids(first)
    assert sorted(seen) == sorted(set(seen)) and len(seen) == total

    steps_per_epoch = total // cfg.global_batch_size
    if not steps_per_epoch:
        return
    train_cfg = dataclasses.replace(cfg, repeat=None, shuffle_buffer=6, cycle_length=2)
    epochs = []
    for i in range(pipelines):
        ctx = tf.distribute.InputContext(pipelines, i, replicas)
        ds = pipeline.make_dataset(manifest, split, True, train_cfg, ctx, with_ids=True)
        epochs.append(_ids(ds.take(2 * steps_per_epoch * per_pipeline)))
    hosts = [set(ids) for ids in epochs]
    assert sum(len(h) for h in hosts) == len(set().union(*hosts))  # disjoint
    first = [ids[:steps_per_epoch * per_replica * per_pipeline] for ids in epochs]
    assert len(set(sum(first, []))) == steps_per_epoch * cfg.global_batch_size


@pytest.mark.parametrize("pipelines", [1, 3])
def test_training_from_any_step_reads_what_the_whole_run_reads_from_there(synthetic_data,
                                                                         pipelines):
    """Resuming is exact: the stream from step S is the uninterrupted stream's tail,
    for every pipeline, across pass boundaries; each pass is a permutation of the
    pipeline's records, a different one each pass; a window is skipped unread."""
    manifest = schema.Manifest.load(synthetic_data)
    cfg = InputConfig(global_batch_size=6, shuffle_buffer=12, cycle_length=3, seed=7)
    per_step = pipeline.records_per_step(cfg, pipelines)
    for i in range(pipelines):
        ctx = tf.distribute.InputContext(pipelines, i, pipelines)

        def stream(step, steps):
            ds = pipeline.make_dataset(manifest, "train", True,
                                       dataclasses.replace(cfg, start_step=step), ctx,
                                       with_ids=True)
            return _ids(ds.take(steps))

        segments = pipeline.pipeline_segments(manifest.shards("train"), pipelines, i)
        share = sum(s.count for s in segments)
        steps = 3 * share // per_step
        whole = stream(0, steps)
        for step in (1, 5, share // per_step, steps - 2):
            assert stream(step, steps - step) == whole[step * per_step:], (i, step)
        passes = [whole[k * share:(k + 1) * share] for k in range(2)]
        assert len(set(passes[0])) == share and set(passes[0]) == set(passes[1])
        assert passes[0] != passes[1]
        order = TrainingOrder(segments, cfg, i)
        window, skip = order.locate(share + 7)  # in pass 1: whole windows are not read
        assert window >= order.windows_per_pass and skip < cfg.shuffle_buffer


@pytest.mark.parametrize("files,pipelines", [(3, 7), (8, 3), (5, 5), (1, 4), (6, 4)])
def test_blocks_cover_the_split_with_shares_within_one(files, pipelines):
    sizes = [4, 3, 5, 4, 4, 2, 4, 4][:files]
    shards = [schema.Shard(f"f{i}", n, "") for i, n in enumerate(sizes)]
    covered = []
    for i in range(pipelines):
        for seg in pipeline.pipeline_segments(shards, pipelines, i):
            covered += [(seg.path, r) for r in range(seg.skip, seg.skip + seg.count)]
    assert covered == [(f"f{i}", r) for i, n in enumerate(sizes) for r in range(n)]
    shares = pipeline.pipeline_records(shards, pipelines)
    assert sum(shares) == sum(sizes) and max(shares) - min(shares) <= 1


def test_mirrored_replicas_get_disjoint_halves_of_the_global_batch(synthetic_data):
    manifest = schema.Manifest.load(synthetic_data)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    ds = pipeline.distributed_dataset(strategy, manifest, "train", True,
                                      InputConfig(global_batch_size=8, seed=0), with_ids=True)
    batch = next(iter(ds))
    halves = [[i.decode() for i in t.numpy()]
              for t in strategy.experimental_local_results(batch["source_id"])]
    assert [len(h) for h in halves] == [4, 4]
    assert not set(halves[0]) & set(halves[1])
    images = strategy.experimental_local_results(batch["image"])
    assert [img.device.endswith(f"CPU:{i}") for i, img in enumerate(images)] == [True, True]


def test_distributed_evaluation_counts_every_record_once(synthetic_data):
    manifest = schema.Manifest.load(synthetic_data)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    ds = pipeline.distributed_dataset(strategy, manifest, "val", False,
                                      InputConfig(global_batch_size=6), with_ids=True)
    ids = []
    for batch in ds:
        for part in strategy.experimental_local_results(batch["source_id"]):
            ids += [i.decode() for i in part.numpy() if i]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == manifest.num_records("val")


def test_take_and_cache(synthetic_data):
    manifest = schema.Manifest.load(synthetic_data)
    cfg = InputConfig(global_batch_size=4, take=6, cache=True)
    ids = _ids(pipeline.make_dataset(manifest, "train", False, cfg, with_ids=True))
    assert len(ids) == 6
    again = _ids(pipeline.make_dataset(manifest, "train", False, cfg, with_ids=True))
    assert ids == again
