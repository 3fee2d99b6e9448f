r"""Convert raw image/mask pairs into remapped, resized, sharded TFRecords.

    python -m facepars.prepare --source=kaggle --input_dir=~/data/kaggle \
        --output_dir=gs://bucket/faces256
    python -m facepars.prepare --source=synthetic --num_examples=2000 --output_dir=/tmp/syn

Sources and their layouts are in docs/data.md; the writing and its safety rules are
in facepars.data.shards; ``--runner=beam`` runs the same conversion on Apache Beam
(facepars.data.beam, data_prep/README.md). Exit code 1 with a message naming the file on bad input.
"""

from __future__ import annotations

import os

from absl import flags

from facepars import classes, cli
from facepars.data import sources
from facepars.imaging import RESIZE_MODES

# TensorFlow is imported in main(), not here: worker processes re-import this
# module (multiprocessing prepares them from __main__) and must stay light.

FLAGS = flags.FLAGS


def define_flags():
    """The command line; see facepars.cli for the conventions all commands share."""
    flags.DEFINE_enum("source", "synthetic", list(sources.SOURCES), "Source dataset layout.")
    flags.DEFINE_string("input_dir", None, "Root of the raw dataset (not used for synthetic).")
    flags.DEFINE_string("output_dir", None, "Where shards and manifest.json go (local or gs://...).")
    flags.DEFINE_enum("taxonomy", classes.DEFAULT_TAXONOMY, list(classes.TAXONOMIES),
                      "Target class table.")
    flags.DEFINE_integer("image_size", 256, "Side of the square images and masks written.")
    flags.DEFINE_enum("resize", "stretch", list(RESIZE_MODES),
                      "stretch: the notebook's behaviour; pad: keep aspect, pad the mask with 255.")
    flags.DEFINE_enum("align", "none", ["none", "landmarks", "detect"],
                      "none: photos as the source frames them (where faces sit is measured "
                      "from the masks); landmarks: each crop aligned on the face's five points "
                      "(LaPa's landmark files, synthetic faces); detect: on the five points "
                      "MTCNN finds (the detect extra; a photo without a face is a bad pair).")
    flags.DEFINE_enum("image_format", "jpeg", ["jpeg", "png"], "Encoding of the images.")
    flags.DEFINE_integer(
        "jpeg_quality", 95, "JPEG quality (1-100).", lower_bound=1, upper_bound=100
    )
    flags.DEFINE_integer("shard_size", 512, "Records per shard at most.", lower_bound=1)
    flags.DEFINE_integer("num_shards", 0, "At least this many shard files per split (e.g. a "
                         "multiple of the training hosts); 0: as shard_size gives.", lower_bound=0)
    flags.DEFINE_integer("workers", os.cpu_count() or 1, "Conversion processes (1: in-process).",
                         lower_bound=1)
    flags.DEFINE_enum("runner", "local", ["local", "beam"],
                      "local: a process pool on this machine; beam: Apache Beam (the "
                      "facepars[beam] extra), e.g. on Dataflow, Flink or Spark.")
    flags.DEFINE_string("beam_pipeline_options", "",
                        "With --runner=beam: Beam options as k=v,k=v, e.g. 'runner=DataflowRunner,"
                        "project=P,region=R,temp_location=gs://B/tmp'. Default: the DirectRunner "
                        "with --workers processes.")
    flags.DEFINE_enum("on_error", "fail", ["fail", "skip"], "What a bad pair does to the run.")
    flags.DEFINE_bool("resume", False, "Finish an interrupted run in output_dir.")
    flags.DEFINE_bool("overwrite", False, "Delete facepars output already in output_dir first.")
    flags.DEFINE_float("val_fraction", 0.0, "Carve this seeded fraction of train into a val "
                       "split (for sources that have none).", lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_integer("seed", 0, "Seed of the shard shuffle, the val carve and synthetic faces.")
    flags.DEFINE_integer("num_examples", 0, "Synthetic faces to generate (split 80/10/10).")
    flags.DEFINE_integer("synthetic_size", 320, "Typical long side of a synthetic photo.")


def main(argv):
    del argv
    from facepars import report
    from facepars.data import shards

    fields = {f for f in shards.PrepareConfig.__dataclass_fields__}
    cfg = shards.PrepareConfig(**{k: FLAGS[k].value for k in fields})
    print(report.summary(shards.run(cfg)))


if __name__ == "__main__":
    cli.run(main, define_flags, required=("output_dir",))
