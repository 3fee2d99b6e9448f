import shutil

import numpy as np
import pytest
import tensorflow as tf

from facepars import schema
from facepars.classes import IGNORE_LABEL
from facepars.data import pipeline
from facepars.data.pipeline import InputConfig


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


@pytest.mark.parametrize("pipelines", [2, 3, 16])
def test_input_pipelines_split_the_records_between_them(synthetic_data, pipelines):
    """FILE sharding when each pipeline gets a shard (10 train shards), DATA beyond."""
    manifest = schema.Manifest.load(synthetic_data)
    per_pipeline = []
    for i in range(pipelines):
        ctx = tf.distribute.InputContext(pipelines, i, pipelines)
        batches = list(pipeline.make_dataset(manifest, "train", False,
                                             InputConfig(global_batch_size=2 * pipelines), ctx,
                                             with_ids=True))
        per_pipeline.append(_ids(batches))
        assert len(batches) == len(list(pipeline.make_dataset(
            manifest, "train", False, InputConfig(global_batch_size=2 * pipelines),
            tf.distribute.InputContext(pipelines, 0, pipelines))))
    everything = sum(per_pipeline, [])
    assert len(everything) == len(set(everything)) == manifest.num_records("train")


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


def test_corrupted_shard_is_named(synthetic_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_data, data)
    manifest = schema.Manifest.load(str(data))
    shard = manifest.shards("train")[3].path
    raw = bytearray(open(shard, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(raw))
    with pytest.raises(pipeline.CorruptShardError, match="train-00003-of-00008.tfrecord"):
        with pipeline.naming_bad_shards(manifest, "train"):
            for _ in pipeline.make_dataset(manifest, "train", False, InputConfig(global_batch_size=4)):
                pass
