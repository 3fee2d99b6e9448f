r"""Convert raw image/mask pairs into remapped, resized, sharded TFRecords.

    python -m facepars.prepare --source=kaggle --input_dir=~/data/kaggle \
        --output_dir=gs://bucket/faces256
    python -m facepars.prepare --source=synthetic --num_examples=2000 --output_dir=/tmp/syn

Sources and their layouts are in docs/data.md; the writing and its safety rules are
in facepars.data.shards; ``--runner=local`` writes with a process pool
(facepars.data.pool), ``--runner=beam`` on Apache Beam (facepars.data.beam,
data_prep/README.md). Exit code 1 with a message naming the file on bad input.

From Python: ``prepare.run(prepare.PrepareConfig(output_dir=..., ...))``.
"""

from __future__ import annotations

from absl import flags

from facepars.core import classes, cli
from facepars.core.imaging import RESIZE_MODES
from facepars.data import beam_options, sources
from facepars.data.prepare_config import DEFAULTS, PrepareConfig

# TensorFlow is imported in run(), not here: worker processes re-import this
# module (multiprocessing prepares them from __main__) and must stay light.

FLAGS = flags.FLAGS


def define_flags():
    """The command line; see facepars.core.cli for the conventions all commands share.

    Defaults come from PrepareConfig (one place); only ``workers`` differs: a
    command uses every core, a library call one process unless asked.
    """
    d = DEFAULTS
    flags.DEFINE_enum("source", d["source"], list(sources.SOURCES), "Source dataset layout.")
    flags.DEFINE_string("input_dir", None, "Root of the raw dataset (not used for synthetic).")
    flags.DEFINE_string("output_dir", None,
                        "Where shards and manifest.json go (local or gs://...).")
    flags.DEFINE_string("classes", d["classes"],
                        "The class file of --source=folder (JSON or CSV: docs/data.md, \"Your "
                        "own data\"); for --source=voc, instead of its labelmap.txt.")
    flags.DEFINE_enum("taxonomy", d["taxonomy"], list(classes.TAXONOMY_CHOICES),
                      "Target class table: a built-in one, or source: the source's own labels "
                      "as published (CelebAMask-HQ's 19, LaPa's 11, a class file's).")
    flags.DEFINE_integer("image_size", d["image_size"],
                         "Side of the square images and masks written.")
    flags.DEFINE_enum("resize", d["resize"], list(RESIZE_MODES),
                      "stretch: squash the photo to the square, as the original notebook did; "
                      "pad: keep aspect, pad the mask with 255.")
    flags.DEFINE_enum("align", d["align"], ["none", "landmarks", "detect"],
                      "none: photos as the source frames them (where faces sit is measured "
                      "from the masks); landmarks: each crop aligned on the face's five points "
                      "(LaPa's landmark files, synthetic faces); detect: on the five points "
                      "MTCNN finds (the detect extra; a photo without a face is a bad pair).")
    flags.DEFINE_enum("image_format", d["image_format"], ["jpeg", "png"],
                      "Encoding of the images.")
    flags.DEFINE_integer("jpeg_quality", d["jpeg_quality"], "JPEG quality (1-100).",
                         lower_bound=1, upper_bound=100)
    flags.DEFINE_integer("shard_size", d["shard_size"], "Records per shard at most.",
                         lower_bound=1)
    flags.DEFINE_integer("num_shards", d["num_shards"], "At least this many shard files per "
                         "split (e.g. a multiple of the training hosts); 0: as shard_size gives.",
                         lower_bound=0)
    cli.define_runner_flags("a process pool on this machine",
                            "Conversion processes (1: in-process).", d["runner"],
                            d["beam_pipeline_options"])
    flags.DEFINE_enum("on_error", d["on_error"], ["fail", "skip"],
                      "What a bad pair does to the run.")
    flags.DEFINE_bool("resume", d["resume"], "Finish an interrupted run in output_dir.")
    flags.DEFINE_bool("overwrite", d["overwrite"],
                      "Delete facepars output already in output_dir first.")
    flags.DEFINE_float("val_fraction", d["val_fraction"], "Carve this seeded fraction of train "
                       "into a val split (for sources that have none; 0: 0.1 for those).",
                       lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_integer("seed", d["seed"],
                         "Seed of the shard shuffle, the val carve and synthetic faces.")
    flags.DEFINE_integer("num_examples", d["num_examples"],
                         "Synthetic faces to generate (split 80/10/10).")
    flags.DEFINE_integer("synthetic_size", d["synthetic_size"],
                         "Typical long side of a synthetic photo.")


def run(cfg: PrepareConfig) -> dict:
    """The whole conversion on the configured runner; returns the manifest written."""
    if cfg.runner == "beam":  # the extra and the options, checked before TensorFlow loads
        beam_options.pipeline_options(cfg.beam_pipeline_options, cfg.workers)
    from facepars.data import shards  # TensorFlow; see above

    if cfg.runner == "beam":
        from facepars.data import beam
        write = beam.write_shards
    else:
        from facepars.data import pool

        ctx = pool.start_worker_server() if cfg.workers > 1 else None  # boots while we list
        write = lambda job: pool.write_shards(job, ctx)
    job = shards.plan_job(cfg)
    if isinstance(job, dict):
        return job
    write(job)
    return shards.finish(job)


def main(argv):
    del argv
    from facepars.data import contents

    cfg = PrepareConfig(**{k: FLAGS[k].value for k in DEFAULTS})
    print(contents.summary(run(cfg)))


if __name__ == "__main__":
    cli.run(main, define_flags, required=("output_dir",), check=beam_options.check_flags,
            inputs=("input_dir",))
