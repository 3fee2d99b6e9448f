"""facepars.data.bad_records: a bad record named after reading only what was in flight."""

import shutil

import pytest

from facepars.data import bad_records, integrity, pipeline, schema
from facepars.data.pipeline import InputConfig


@pytest.mark.parametrize("training", [True, False])
def test_a_corrupted_record_is_named_reading_only_what_was_in_flight(synthetic_data, tmp_path,
                                                                     monkeypatch, training):
    """A flipped byte in shard 3: the error names that shard and a record index, and
    finding it decodes at most the windows in flight, not the split; an error that
    is not about data keeps its own type and traceback."""
    data = tmp_path / "data"
    shutil.copytree(synthetic_data, data)
    manifest = schema.Manifest.load(str(data))
    shard = manifest.shards("train")[3].path
    raw = bytearray(open(shard, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(raw))
    checked = []
    real = integrity.check_records
    monkeypatch.setattr(integrity, "check_records",
                        lambda path, skip, count, *a: checked.append(count) or
                        real(path, skip, count, *a))
    cfg = InputConfig(global_batch_size=4, shuffle_buffer=8, cycle_length=2, seed=3)
    step = [0]
    with pytest.raises(bad_records.CorruptShardError,
                       match=r"train-00003-of-00008.tfrecord record \d+: unreadable"):
        with bad_records.naming_bad_records(manifest, "train", training, cfg, lambda: step[0]):
            for _ in pipeline.make_dataset(manifest, "train", training, cfg):
                step[0] += 1
    assert 0 < sum(checked) <= bad_records.WINDOWS_IN_FLIGHT * cfg.shuffle_buffer
    with pytest.raises(ZeroDivisionError):
        with bad_records.naming_bad_records(manifest, "train", training, cfg, lambda: 0):
            1 / 0
