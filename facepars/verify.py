r"""Check a prepared data set end to end, and show what it holds.

    python -m facepars.verify --data_dir=/tmp/faces256 [--chart=dist.png]

Re-reads every shard the manifest names: the file exists, its checksum and record
count match, every record parses and decodes to the manifest's size, and every
label is a class id or the ignore label. The first bad record of each shard is
reported by shard and index; the exit code is 1 if anything is wrong. Then the
class distribution is printed and drawn (default ``DATA_DIR/class_distribution.png``).
"""

from __future__ import annotations

import sys

import tensorflow as tf
from absl import app, flags, logging

from facepars import report, schema
from facepars.classes import IGNORE_LABEL
from facepars.progress import Progress

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Directory holding manifest.json and the shards.")
flags.DEFINE_string("chart", None, "Where to write the class-distribution PNG.")


def verify_shard(shard: schema.Shard, image_size: int, num_classes: int,
                 progress: Progress | None = None) -> list[str]:
    """Problems found in one shard (the first bad record at most), empty if sound."""
    name = shard.path
    if not tf.io.gfile.exists(shard.path):
        return [f"{name}: missing"]
    problems = []
    digest = schema.file_sha256(shard.path)
    if digest != shard.sha256:
        problems.append(f"{name}: checksum {digest[:12]}... differs from the manifest's "
                        f"{shard.sha256[:12]}... (the file changed after prepare)")

    def check(serialized):
        record = schema.parse_example(serialized, image_size)
        labels = tf.where(record["mask"] == IGNORE_LABEL, tf.zeros_like(record["mask"]), record["mask"])
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


def main(argv):
    del argv
    if not FLAGS.data_dir:
        raise app.UsageError("--data_dir is required")
    try:
        manifest, problems = verify(FLAGS.data_dir)
    except (FileNotFoundError, ValueError) as e:
        print(f"verify failed: {e}", file=sys.stderr)
        sys.exit(1)
    print(report.summary(manifest.data))
    chart = FLAGS.chart or schema.join(FLAGS.data_dir, "class_distribution.png")
    report.distribution_chart(manifest.data, chart)
    print(f"\nclass distribution chart: {chart}")
    if problems:
        print(f"\nverify FAILED, {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    shards = sum(1 for _ in manifest.iter_all_shards())
    print(f"verify OK: {shards} shards, "
          f"{sum(manifest.num_records(s) for s in manifest.splits)} records, checksums match")
    logging.info("verified %s", FLAGS.data_dir)


if __name__ == "__main__":
    app.run(main)
