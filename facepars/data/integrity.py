"""Integrity checks of prepared shards against their manifest."""

from __future__ import annotations

import tensorflow as tf

from facepars import files, schema
from facepars.classes import IGNORE_LABEL
from facepars.progress import Progress


def verify_shard(shard: schema.Shard, image_size: int, num_classes: int,
                 progress: Progress | None = None) -> list[str]:
    """Problems found in one shard (the first bad record at most), empty if sound."""
    name = shard.path
    if not tf.io.gfile.exists(shard.path):
        return [f"{name}: missing"]
    problems = []
    digest = files.file_sha256(shard.path)
    if digest != shard.sha256:
        problems.append(f"{name}: checksum {digest[:12]}... differs from the manifest's "
                        f"{shard.sha256[:12]}... (the file changed after prepare)")

    def check(serialized):
        record = schema.parse_example(serialized, image_size)
        labels = tf.where(
            record["mask"] == IGNORE_LABEL, tf.zeros_like(record["mask"]), record["mask"]
        )
        return record["source_id"], tf.reduce_max(labels)

    records = tf.data.TFRecordDataset(shard.path).map(check, num_parallel_calls=tf.data.AUTOTUNE,
                                                      deterministic=True)
    count = 0
    try:
        for source_id, max_label in records.as_numpy_iterator():
            if max_label >= num_classes:
                problems.append(f"{name} record {count} ({source_id.decode()}): label {max_label} "
                                f"is not a class id (0..{num_classes - 1}) or {IGNORE_LABEL}")
                return problems
            count += 1
            if progress:
                progress.update()
    except tf.errors.OpError as e:
        problems.append(f"{name} record {count}: unreadable ({e.message.splitlines()[0]})")
        return problems
    if count != shard.num_records:
        problems.append(f"{name}: {count} records, the manifest says {shard.num_records}")
    return problems


def verify(data_dir: str) -> tuple[schema.Manifest, list[str]]:
    manifest = schema.Manifest.load(data_dir)
    num_classes = manifest.class_table.num_classes
    total = sum(manifest.num_records(s) for s in manifest.splits)
    progress = Progress("verify", total, "records")
    problems = []
    for _, shard in manifest.iter_all_shards():
        problems += verify_shard(shard, manifest.image_size, num_classes, progress)
    return manifest, problems
