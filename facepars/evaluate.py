r"""Per-class report of a trained model on a split: ``python -m facepars.evaluate``.

    python -m facepars.evaluate --model_path=/tmp/run --data_dir=/tmp/syn --split=val \
        --output_dir=/tmp/run/eval [--original_resolution --input_dir=RAW]

``--model_path`` is a training model_dir (its best.keras), a ``.keras`` file with the
config.json facepars.train wrote beside it, or an exported SavedModel. Scores
come from one confusion matrix over the whole split (every record exactly once),
at the network resolution from the shards; with ``--original_resolution`` also
at each photo's own size: the logits resized back (undoing stretch or pad) and
compared with the original mask remapped, the protocol of the face-parsing
literature. Writes ``SPLIT_report.json`` and ``SPLIT_confusion.png``.
"""

from __future__ import annotations

from absl import flags

from facepars.core import cli
from facepars.faces.detection import FaceFilter

FLAGS = flags.FLAGS


def define_flags():
    """The command line; see facepars.core.cli for the conventions all commands share."""
    flags.DEFINE_string("model_path", None, "A training model_dir, .keras file, exported "
                        "SavedModel directory, .tflite or .onnx file.")
    flags.DEFINE_string("data_dir", None, "Prepared data (manifest.json).")
    flags.DEFINE_string("split", "val", "Split to score.")
    flags.DEFINE_string("output_dir", None, "Where the JSON report and confusion PNG go.")
    flags.DEFINE_integer("batch_size", 16, "Global batch size.")
    flags.DEFINE_bool("original_resolution", False, "Also score at each photo's own size.")
    flags.DEFINE_string("input_dir", None, "Raw source data (for --original_resolution; "
                        "default: where the manifest says it was prepared from).")
    cli.define_face_flags()
    cli.define_strategy_flags()


def main(argv):
    del argv
    from facepars import evaluate_lib  # TensorFlow loads here, once the flags are checked
    evaluate_lib.run(FLAGS.model_path, FLAGS.data_dir, FLAGS.split, FLAGS.output_dir,
                     batch_size=FLAGS.batch_size, strategy_name=FLAGS.strategy, tpu=FLAGS.tpu,
                     original=FLAGS.original_resolution, input_dir=FLAGS.input_dir,
                     faces=FLAGS.faces, keep=FaceFilter(FLAGS.min_score, FLAGS.min_face))


if __name__ == "__main__":
    cli.run(main, define_flags, required=("model_path", "data_dir"),
            inputs=("model_path", "data_dir", "input_dir"))
