"""``predict --runner=beam``: a photo corpus parsed on Apache Beam's RunInference.

    python -m facepars.predict --runner=beam --model_path=gs://b/export/saved_model \
        --output_dir=gs://b/parsed --beam_pipeline_options=runner=DataflowRunner,... \
        'gs://b/photos/*.jpg'

The same work as the local run, spread over Beam workers: each input (a file, a
glob, or a directory searched recursively) is expanded on a worker, and list
files (``@LIST``) are read there too, so the pipeline graph holds the patterns,
never the photo list. A worker reads each
photo (EXIF applied), and ``RunInference`` batches them (``--batch_size`` at
most) through a model handler that loads ``Predictor`` and, for
``--faces=detect``, the detector once per worker process. Beam's own
TensorFlow handlers load through Keras, which cannot load SavedModel
directories under Keras 3; this handler takes every path Predictor takes.
Outputs are written by the same ``write_outputs`` as locally, so the label PNGs
are the same bytes and ``summary.json`` the same entries (the network's output
does not depend on the batch it ran in).

A photo that cannot be read is a failure recorded in ``summary.json`` with its
reason, counted, and the job goes on; the command's exit code says whether any
failed. Counters (namespace ``facepars.predict``): photos, faces, failures.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import apache_beam as beam
import tensorflow as tf
from absl import logging
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, RunInference

from facepars.core import files, imaging
from facepars.core.classes import ClassTable
from facepars.data.beam import log_counters
from facepars.data.beam import pipeline as beam_pipeline
from facepars.faces.detection import FaceFilter
from facepars.inference.photo_outputs import SUMMARY, write_outputs, write_summary
from facepars.inference.predictor import Predictor, choose_mode

NAMESPACE = "facepars.predict"


@dataclasses.dataclass(frozen=True)
class Job:
    """What every worker needs to parse and write a photo."""

    model: str
    output_dir: str
    faces: str
    keep: FaceFilter
    probabilities: bool
    batch_size: int


def expand(item: str, extensions: tuple[str, ...]):
    """(path, output name) of every photo an input names, on a worker: a directory's
    photos (recursively, names relative to it; a bucket directory ends in "/"), a
    glob's or a file's (basenames). A named file that is not there is passed on, to
    be reported as the local run reports it."""
    directory = item.endswith("/") or (not files.is_url(item) and os.path.isdir(item))
    pattern = files.join(item, "**") if directory else item
    matched = FileSystems.match([pattern])[0].metadata_list
    if not matched and not directory and not glob.has_magic(item):
        yield item, os.path.basename(item)
    for meta in matched:
        if directory and not meta.path.lower().endswith(extensions):
            continue
        name = os.path.relpath(meta.path, item) if directory else os.path.basename(meta.path)
        yield meta.path, name


class ReadPhoto(beam.DoFn):
    """(path, name) -> (name, photo); an unreadable photo goes to the ``failed`` output."""

    def __init__(self):
        self.failed = beam.metrics.Metrics.counter(NAMESPACE, "failures")

    def process(self, item):
        path, name = item
        try:
            yield name, imaging.read_image(path, apply_exif=True)[0]
        except imaging.BadInput as e:
            self.failed.inc()
            logging.warning("skipped %s", e)
            yield beam.pvalue.TaggedOutput("failed", str(e))


@dataclasses.dataclass
class Loaded:
    """What a worker loads once (Beam shares it through a weak reference: not a tuple)."""

    predictor: Predictor
    detector: object | None


class PredictorHandler(ModelHandler):
    """RunInference's handler for any model path Predictor loads; (name, photo) in,
    (name, photo, Prediction) out. The detector is loaded with the model, once."""

    def __init__(self, job: Job):
        super().__init__(min_batch_size=1, max_batch_size=job.batch_size)
        self.job = job

    def load_model(self):
        predictor = Predictor.load(self.job.model)
        return Loaded(predictor, choose_mode(self.job.faces, predictor)[1])

    def run_inference(self, batch, model: Loaded, inference_args=None):
        predictor, detector = model.predictor, model.detector
        names, photos = [n for n, _ in batch], [p for _, p in batch]
        if detector is None:
            predictions = predictor.predict_batch(photos, self.job.probabilities)
        else:
            predictions = [predictor.parse_photo(photo, detector, self.job.keep,
                                                 self.job.probabilities)
                           for photo in photos]
        return list(zip(names, photos, predictions))

    def get_num_bytes(self, batch) -> int:
        return sum(photo.nbytes for _, photo in batch)

    def get_metrics_namespace(self) -> str:
        return NAMESPACE


class WriteOutputs(beam.DoFn):
    """A photo's label PNG, overlay (and probabilities); yields (name, summary entry)."""

    def __init__(self, job: Job, table_json: dict):
        self.job, self.table_json = job, table_json
        self.photos = beam.metrics.Metrics.counter(NAMESPACE, "photos")
        self.faces = beam.metrics.Metrics.counter(NAMESPACE, "faces")

    def setup(self):
        self.table = ClassTable.from_json(self.table_json)

    def process(self, result):
        name, photo, prediction = result
        self.photos.inc()
        self.faces.inc(len(prediction.faces or []))
        yield name, write_outputs(self.job.output_dir, name, photo, prediction, self.table)


def build(pipeline, job: Job, inputs: list[str], lists: list[str], extensions,
          table_json: dict):
    """The transforms; returns (summary entries, failures) PCollections. ``lists``:
    list files, read on the workers as text (one input per line)."""
    named = [pipeline | "Inputs" >> beam.Create(inputs)]
    for i, path in enumerate(lists):
        named.append(pipeline
                     | f"ReadList{i}" >> beam.io.ReadFromText(path)
                     | f"ListEntries{i}" >> beam.FlatMap(lambda line: files.list_entries([line])))
    photos = (named
              | "AllInputs" >> beam.Flatten()
              | "Expand" >> beam.FlatMap(expand, extensions)
              | "Spread" >> beam.Reshuffle()
              | "Read" >> beam.ParDo(ReadPhoto()).with_outputs("failed", main="photos"))
    entries = (photos.photos
               | "Parse" >> RunInference(PredictorHandler(job))
               | "Write" >> beam.ParDo(WriteOutputs(job, table_json)))
    return entries, photos.failed


def run(job: Job, inputs: list[str], options, extensions) -> tuple[dict, list[str], dict]:
    """Parse ``inputs`` on the Beam runner ``options`` names (``@LIST`` inputs: list
    files, read on the workers); write summary.json.

    Returns (summary, failures) as the local run does, and the job's counters.
    """
    lists = [files.list_file(i) for i in inputs if files.list_file(i)]
    inputs = [i for i in inputs if not files.list_file(i)]
    predictor = Predictor.load(job.model)  # here first: a bad path fails before any worker
    mode, _ = choose_mode(job.faces, predictor)
    table_json = predictor.table.to_json()
    tf.io.gfile.makedirs(job.output_dir)

    def summarise(_, entries, failures):
        write_summary(job.output_dir, job.model, mode, dict(sorted(entries)), sorted(failures))

    with beam_pipeline(options) as pipeline:
        entries, failed = build(pipeline, job, inputs, lists, extensions, table_json)
        _ = (pipeline
             | "One" >> beam.Create([None])
             | "Summary" >> beam.Map(summarise, beam.pvalue.AsList(entries),
                                     beam.pvalue.AsList(failed)))
    totals = log_counters(pipeline.result, NAMESPACE)
    summary = files.read_json(files.join(job.output_dir, SUMMARY))
    return summary["photos"], summary["failures"], totals
