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

import glob
import os
import sys

import tensorflow as tf
from absl import flags, logging

from facepars.core import cli, files, imaging
from facepars.core.errors import ConfigError
from facepars.core.imaging import BadInput
from facepars.core.progress import Progress
from facepars.faces.detection import FaceFilter
from facepars.inference import video
from facepars.inference.photo_outputs import PHOTO_EXTENSIONS, write_outputs, write_summary
from facepars.inference.predictor import Predictor, choose_mode

FLAGS = flags.FLAGS


def collect(inputs: list[str]) -> list[tuple[str, str]]:
    """(path, output name) for every photo: names relative to the directory given."""
    entries = []
    for item in inputs:
        listed = files.list_file(item)
        if listed is not None:
            with files.open(listed) as f:
                entries += collect(files.list_entries(f))
        elif os.path.isdir(item):
            for root, _, names in os.walk(item):
                for name in sorted(names):
                    if name.lower().endswith(PHOTO_EXTENSIONS + video.VIDEO_EXTENSIONS):
                        path = os.path.join(root, name)
                        entries.append((path, os.path.relpath(path, item)))
        else:
            matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
            entries += [(p, os.path.basename(p)) for p in matches]
    return sorted(set(entries))


def run(model: str, inputs: list[str], output_dir: str, *, batch_size: int = 8,
        probabilities: bool = False, faces: str = "auto", keep: FaceFilter = FaceFilter(),
        smooth: bool = True, detect_every: int = 30) -> tuple[dict, list[str]]:
    """Returns the per-photo (and per-video) summary and the list of failures
    ("path: problem"). ``smooth`` and ``detect_every`` apply to videos."""
    predictor = Predictor.load(model)
    mode, detector = choose_mode(faces, predictor)
    logging.info("parsing %s", "each detected face, aligned" if detector else "whole photos")
    entries = collect(inputs)
    videos = [(path, name) for path, name in entries if video.is_video(path)]
    photos = [item for item in entries if item not in videos]
    tf.io.gfile.makedirs(output_dir)
    summary, failures = {}, []
    for path, name in videos:
        try:
            record = video.parse_video(predictor, detector, path, output_dir, name, smooth=smooth,
                                       detect_every=detect_every, keep=keep)
        except BadInput as e:
            failures.append(str(e))
            logging.warning("skipped %s", e)
            continue
        summary[name] = {"classes": record["classes"], "frames": record["frames"],
                         "fps": record["fps"]}
    progress = Progress("predict", len(photos), "photos", every=2.0)
    for start in range(0, len(photos), batch_size):
        batch = []
        for path, name in photos[start:start + batch_size]:
            try:
                batch.append((name, imaging.read_image(path, apply_exif=True)[0]))
            except BadInput as e:
                failures.append(str(e))
                logging.warning("skipped %s", e)
                progress.update()
        if not batch:
            continue
        if detector is None:
            predictions = predictor.predict_batch([p for _, p in batch], probabilities)
        else:
            predictions = []
            for name, photo in batch:
                predictions.append(predictor.parse_photo(
                    photo, detector, keep, probabilities))
                if not predictions[-1].faces:
                    logging.warning("%s: no face found; left as background", name)
        for (name, photo), prediction in zip(batch, predictions):
            summary[name] = write_outputs(output_dir, name, photo, prediction, predictor.table)
            progress.update()
    write_summary(output_dir, model, mode, summary, failures)
    return summary, failures


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


def run_on_beam(model: str, inputs: list[str], output_dir: str, *, batch_size: int = 8,
                probabilities: bool = False, faces: str = "auto", keep: FaceFilter = FaceFilter(),
                beam_pipeline_options: str = "", workers: int = 2) -> tuple[dict, list[str]]:
    """``run`` on Apache Beam (facepars.inference.beam_corpus); the same outputs and returns."""
    from facepars.data.beam import pipeline_options
    from facepars.inference import beam_corpus  # the optional facepars[beam] extra
    job = beam_corpus.Job(model, output_dir, faces, keep, probabilities, batch_size)
    summary, failures, _ = beam_corpus.run(
        job, inputs, pipeline_options(beam_pipeline_options, workers), PHOTO_EXTENSIONS)
    return summary, failures


def main(argv):
    keep = FaceFilter(FLAGS.min_score, FLAGS.min_face)
    if FLAGS.runner == "beam":
        videos = [a for a in argv[1:] if video.is_video(a)]
        if videos:
            raise ConfigError(f"{videos[0]}: videos are parsed with --runner=local (one video "
                              "streams through one process)")
        summary, failures = run_on_beam(
            FLAGS.model_path, argv[1:], FLAGS.output_dir, batch_size=FLAGS.batch_size,
            probabilities=FLAGS.probabilities, faces=FLAGS.faces, keep=keep,
            beam_pipeline_options=FLAGS.beam_pipeline_options, workers=FLAGS.workers)
    else:
        summary, failures = run(
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
            positional="photos, videos, directories, globs or @LIST files after the flags")
