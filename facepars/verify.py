r"""Check a prepared data set end to end, and show what it holds.

    python -m facepars.verify --data_dir=/tmp/faces256 [--output_dir=reports/]

Re-reads every shard the manifest names: the file exists, its checksum and record
count match, every record parses and decodes to the manifest's size, and every
label is a class id or the ignore label. The first bad record of each shard is
reported by shard and index; the exit code is 1 if anything is wrong. When all is
sound it leaves ``verified.json``, which ``train`` trusts instead of reading the
shards again, for as long as each shard keeps its size and modification time. Then the
class distribution is printed and drawn, ``class_distribution.png`` in
``--output_dir`` (default: the data directory).
"""

from __future__ import annotations

import sys

from absl import flags, logging

from facepars.core import cli

FLAGS = flags.FLAGS


def define_flags():
    """The command line; see facepars.core.cli for the conventions all commands share."""
    flags.DEFINE_string("data_dir", None, "Directory holding manifest.json and the shards.")
    flags.DEFINE_string("output_dir", None, "Where class_distribution.png goes (default: "
                        "--data_dir).")


def main(argv):
    del argv
    from facepars import verify_lib  # TensorFlow loads here, once the flags are checked
    from facepars.data import contents
    result = verify_lib.run(FLAGS.data_dir, FLAGS.output_dir)
    manifest, problems = result["manifest"], result["problems"]
    print(contents.summary(manifest.data))
    print(f"\nclass distribution chart: {result['chart']}")
    if problems:
        print(f"\nverify FAILED, {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    shards = sum(1 for _ in manifest.iter_all_shards())
    print(f"verify OK: {shards} shards, "
          f"{sum(manifest.num_records(s) for s in manifest.splits)} records, checksums match "
          f"(stamp for train: {result['stamp']})")
    logging.info("verified %s", FLAGS.data_dir)


if __name__ == "__main__":
    cli.run(main, define_flags, required=("data_dir",), inputs=("data_dir",))
