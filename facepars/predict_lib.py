"""Parsing photos and videos (``run``, ``run_on_beam``): the work of facepars.predict.

The command line is facepars.predict, which imports this module, and with it
TensorFlow, only once its flags are checked. Code that parses without the
command line (tests, notebooks) calls ``run`` here, or uses
facepars.inference.predictor.Predictor for one photo at a time.
"""

from __future__ import annotations

import glob
import os

import tensorflow as tf
from absl import logging

from facepars.core import files, imaging
from facepars.core.errors import ConfigError
from facepars.core.imaging import BadInput
from facepars.core.progress import Progress
from facepars.faces.detection import FaceFilter
from facepars.inference import video
from facepars.inference.photo_outputs import PHOTO_EXTENSIONS, write_outputs, write_summary
from facepars.inference.predictor import Predictor, choose_mode


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


def run_on_beam(model: str, inputs: list[str], output_dir: str, *, batch_size: int = 8,
                probabilities: bool = False, faces: str = "auto", keep: FaceFilter = FaceFilter(),
                beam_pipeline_options: str = "", workers: int = 2) -> tuple[dict, list[str]]:
    """``run`` on Apache Beam (facepars.inference.beam_corpus); the same outputs and returns."""
    videos = [a for a in inputs if video.is_video(a)]
    if videos:
        raise ConfigError(f"{videos[0]}: videos are parsed with --runner=local (one video "
                          "streams through one process)")
    from facepars.data.beam_options import pipeline_options
    options = pipeline_options(beam_pipeline_options, workers)  # first: it checks the extra
    from facepars.inference import beam_corpus
    job = beam_corpus.Job(model, output_dir, faces, keep, probabilities, batch_size)
    summary, failures, _ = beam_corpus.run(job, inputs, options, PHOTO_EXTENSIONS)
    return summary, failures
