"""Integrity checks of prepared shards against their manifest.

Two levels. ``verify`` (facepars.verify) reads every byte: checksums, every
record decoded, every label a class id; when all is sound it leaves a stamp,
``verified.json``, naming each shard with its checksum, size and modification
time. ``check_present`` (what train runs at every start) costs one ``stat`` per
shard, in parallel, whatever the data set's size: each shard is there with the
size the manifest gives, and the stamp vouches for the contents of the shards
whose size and modification time it recorded. A shard changed since
verification has another modification time, so the stamp no longer covers it.
"""

from __future__ import annotations

import concurrent.futures
import os
import time

import tensorflow as tf

from facepars.core import files
from facepars.core.classes import IGNORE_LABEL
from facepars.core.progress import Progress
from facepars.data import schema


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
    count, problem = check_records(shard.path, 0, -1, image_size, num_classes, progress)
    if problem:
        return problems + [problem]
    if count != shard.num_records:
        problems.append(f"{name}: {count} records, the manifest says {shard.num_records}")
    return problems


def check_records(path: str, skip: int, count: int, image_size: int, num_classes: int,
                  progress: Progress | None = None) -> tuple[int, str | None]:
    """Decode records ``[skip, skip + count)`` of a shard (``count=-1``: to its end) as
    training would; returns how many were read and the first problem, named by shard
    and record index (None if every record is sound)."""
    def check(serialized):
        record = schema.parse_example(serialized, image_size)
        labels = tf.where(
            record["mask"] == IGNORE_LABEL, tf.zeros_like(record["mask"]), record["mask"]
        )
        return record["source_id"], tf.reduce_max(labels)

    records = tf.data.TFRecordDataset(path).skip(skip).take(count).map(
        check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    index = skip
    try:
        for source_id, max_label in records.as_numpy_iterator():
            if max_label >= num_classes:
                return index - skip, (
                    f"{path} record {index} ({source_id.decode()}): label {max_label} is not "
                    f"a class id (0..{num_classes - 1}) or {IGNORE_LABEL}")
            index += 1
            if progress:
                progress.update()
    except tf.errors.OpError as e:
        return index - skip, f"{path} record {index}: unreadable ({e.message.splitlines()[0]})"
    return index - skip, None


def verify(data_dir: str) -> tuple[schema.Manifest, list[str]]:
    manifest = schema.Manifest.load(data_dir)
    num_classes = manifest.class_table.num_classes
    total = sum(manifest.num_records(s) for s in manifest.splits)
    progress = Progress("verify", total, "records")
    problems = []
    for _, shard in manifest.iter_all_shards():
        problems += verify_shard(shard, manifest.image_size, num_classes, progress)
    return manifest, problems


def _stat(path: str):
    try:
        return tf.io.gfile.stat(path)
    except tf.errors.NotFoundError:
        return None


def stat_shards(shards: list[schema.Shard]) -> dict:
    """path -> tf.io.gfile stat (None if missing), 32 at once (one request each on a bucket)."""
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        return dict(zip((s.path for s in shards), pool.map(_stat, (s.path for s in shards))))


def write_stamp(manifest: schema.Manifest) -> str:
    """Record that every shard was verified as it is now; returns the stamp's path."""
    shards = [shard for _, shard in manifest.iter_all_shards()]
    stats = stat_shards(shards)
    path = files.join(manifest.data_dir, schema.VERIFIED)
    files.write_json_atomic(path, {
        "verified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "shards": {os.path.basename(s.path): {"sha256": s.sha256, "bytes": stats[s.path].length,
                                               "mtime_nsec": stats[s.path].mtime_nsec}
                   for s in shards}})
    return path


def check_present(manifest: schema.Manifest, splits) -> tuple[list[str], list[schema.Shard]]:
    """Problems with the shards of ``splits`` that cost no reading (missing, wrong size,
    records not adding up), and the shards no valid verification stamp covers."""
    problems, unvouched = [], []
    stamp_path = files.join(manifest.data_dir, schema.VERIFIED)
    stamp = files.read_json(stamp_path)["shards"] if tf.io.gfile.exists(stamp_path) else {}
    for split in splits:
        shards = manifest.shards(split)
        if sum(s.num_records for s in shards) != manifest.num_records(split):
            problems.append(f"{files.join(manifest.data_dir, schema.MANIFEST)}: the {split} "
                            "shards' record counts do not add up to the split's")
        stats = stat_shards(shards)
        for shard in shards:
            stat = stats[shard.path]
            if stat is None:
                problems.append(f"{shard.path}: shard listed in the manifest is missing")
            elif shard.bytes >= 0 and stat.length != shard.bytes:
                problems.append(f"{shard.path}: {stat.length} bytes, the manifest says "
                                f"{shard.bytes} (truncated or changed since prepare; run "
                                "facepars.verify)")
            elif stamp.get(os.path.basename(shard.path)) != {
                    "sha256": shard.sha256, "bytes": stat.length, "mtime_nsec": stat.mtime_nsec}:
                unvouched.append(shard)
    return problems, unvouched
