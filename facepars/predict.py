r"""Parse faces in photos of any size: ``python -m facepars.predict``.

    python -m facepars.predict --model_path=/tmp/run --output_dir=/tmp/out photos/ 'more/*.jpg'

Inputs are files, directories (searched recursively), globs and ``@LIST``, a
text file (local or in a bucket) naming one input per line; under
``--runner=beam`` workers read the list and expand what it names. EXIF orientation
is applied; grey, RGBA, palette, CMYK and 16-bit images are accepted. For each
photo, under ``--output_dir`` with the input's relative name:

  NAME.labels.png    palette PNG: pixel values are class ids, the palette the class colours
  NAME.overlay.jpg   the photo blended with the class colours
  NAME.probs.npz     per-class probabilities (with --probabilities)

and ``summary.json`` with each photo's per-class pixel fractions and the faces
parsed. A file that cannot be read is reported by name and skipped; the exit
code is 1 if any was.

Videos (mp4, mov, webm, avi, mkv, animated gif; the ``video`` extra) are parsed
frame by frame with faces tracked and labels smoothed between frames
(facepars.inference.tracking; ``--nosmooth`` parses each frame on its own, ``--detect_every``
sets how often the detector runs). For ``clip.mp4``: ``clip.overlay.mp4``,
``clip.labels/000000.png ...`` and ``clip.summary.json`` (facepars.inference.video).

``--faces=detect`` (the default when the detect extra is installed) finds every
face (MTCNN, score and size thresholds), warps each to where the model's
training crops put faces, parses it and puts its labels back on the photo
(facepars.inference.predictor.Predictor.predict_faces); the overlay draws the boxes. A
photo without a face found says so and stays background. ``--faces=whole``
resizes the whole photo into the network, as for face crops.

``--runner=beam`` parses a corpus on Apache Beam (facepars.inference.beam_corpus): the
same outputs, written by Beam workers (Dataflow, Flink, Spark, or Beam's local
FnApiRunner with ``--workers`` processes here).
"""

from __future__ import annotations

import sys

from absl import flags

from facepars.core import cli
from facepars.data import beam_options
from facepars.faces.detection import FaceFilter

FLAGS = flags.FLAGS


def define_flags():
    """The command line; see facepars.core.cli for the conventions all commands share."""
    flags.DEFINE_string("model_path", None, "A training model_dir, .keras file, exported "
                        "SavedModel directory, .tflite or .onnx file.")
    flags.DEFINE_string("output_dir", None, "Where the outputs go (nothing is written elsewhere).")
    flags.DEFINE_integer("batch_size", 8, "Photos per network call.")
    flags.DEFINE_bool("probabilities", False, "Also write per-class probability maps (.npz).")
    flags.DEFINE_bool("smooth", True, "Videos: track faces and smooth their points and labels "
                      "across frames (--nosmooth: each frame on its own).")
    flags.DEFINE_integer("detect_every", 30, "Videos: run the face detector every this many "
                         "frames (and when a track is lost); 1: every frame.", lower_bound=1)
    cli.define_face_flags()
    cli.define_runner_flags("this process (beam: RunInference)",
                            "With --runner=beam and no runner named: the local runner's "
                            "processes.")


def main(argv):
    from facepars import predict_lib  # TensorFlow loads here, once the flags are checked
    keep = FaceFilter(FLAGS.min_score, FLAGS.min_face)
    if FLAGS.runner == "beam":
        summary, failures = predict_lib.run_on_beam(
            FLAGS.model_path, argv[1:], FLAGS.output_dir, batch_size=FLAGS.batch_size,
            probabilities=FLAGS.probabilities, faces=FLAGS.faces, keep=keep,
            beam_pipeline_options=FLAGS.beam_pipeline_options, workers=FLAGS.workers)
    else:
        summary, failures = predict_lib.run(
            FLAGS.model_path, argv[1:], FLAGS.output_dir, batch_size=FLAGS.batch_size,
            probabilities=FLAGS.probabilities, faces=FLAGS.faces, keep=keep,
            smooth=FLAGS.smooth, detect_every=FLAGS.detect_every)
    if summary:
        names = next(iter(summary.values()))["classes"].keys()
        print(f"{'photo':<34}{'faces':>6}" + "".join(f"{n[:9]:>10}" for n in names))
        for photo, record in summary.items():
            faces = (f"{record['frames']}fr" if "frames" in record
                     else str(len(record["faces"])) if "faces" in record else "-")
            print(f"{photo[:34]:<34}{faces:>6}"
                  + "".join(f"{record['classes'][n]:>10.3f}" for n in names))
    videos = sum("frames" in record for record in summary.values())
    parsed = f"{len(summary) - videos} photos" + (f" and {videos} videos" if videos else "")
    print(f"\n{parsed} parsed into {FLAGS.output_dir}, {len(failures)} failed")
    for failure in failures:
        print(f"  failed: {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main, define_flags, required=("model_path", "output_dir"),
            positional="photos, videos, directories, globs or @LIST files after the flags",
            check=beam_options.check_flags, inputs=("model_path",))
