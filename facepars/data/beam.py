"""``prepare --runner=beam``: the same shards, written by Apache Beam workers.

Beam only distributes the work. The driver lists the source and plans the
shards exactly as the local runner does (facepars.data.shards.plan_job); each
pending shard is then one element of a Beam pipeline, and a worker converts its
pairs and writes it with the same ``write_shard`` the local pool uses: the same
pairs, in the same order, through the same code, so the records and shards are
the same bytes whichever runner made them. The driver reads the statistics the
workers left beside their shards and writes the manifest, as locally.

A shard is the unit of work because the record order inside a shard is part of
the output: per-pair elements would have to be regrouped and re-sorted before
writing, moving every encoded image through Beam's shuffle for nothing. At the
default 512 pairs a shard (about 10 s of CPU), a million pairs make 2,000
elements: enough to keep hundreds of workers busy.

The pipeline graph does not grow with the data: the driver writes the plan (each
pending shard's pair references, one JSON line a shard) to ``_parts/shard_pairs.jsonl``
beside the output, and an element is only a shard's name and where its line
sits in that file (``PlanEntry``). A million pairs make a graph of about 2,000
such entries, far under Dataflow's 10 MB job-request limit, where embedding
the references themselves would not be.

Failures are data, not retries: a bad pair under ``--on_error=fail`` is a fact
about the input that no retry will change, so the worker records the error
beside the shard (which it never renames into place) instead of raising into
Beam's retry loop, and the driver reports it once the pipeline is done.
"""

from __future__ import annotations

import dataclasses
import json
import logging as std_logging
import threading

import apache_beam as beam
import tensorflow as tf
from absl import logging
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from facepars.core import files, internals
from facepars.core.errors import PrepareError
from facepars.core.progress import Progress
from facepars.data import convert, shards, sources
from facepars.data.beam_options import LOCAL_RUNNER, pipeline_options
from facepars.data.prepare_config import PrepareConfig

NAMESPACE = "facepars.prepare"


def pipeline(options: PipelineOptions) -> beam.Pipeline:
    """A pipeline on the runner ``options`` name.

    The local runner is the FnApiRunner, named, not the DirectRunner: since Beam
    2.68 the DirectRunner first hands a pipeline to Prism, a Go binary it fetches
    from GitHub (offline it logs the failure and falls back to the FnApiRunner),
    whose workers and counters are not the ones facepars sets and reads, so a
    machine online would run other code than the tests do. Beam's release notes
    advise the pin (apache/beam#34612). Built with the options provisioned to
    its workers (facepars.core.internals.provisioned_fn_api_runner). Beam's own
    INFO lines (the driver's; an in-memory run's worker too) are kept out of
    facepars's progress.
    """
    std_logging.getLogger("apache_beam").setLevel(std_logging.WARNING)
    if options.view_as(StandardOptions).runner != LOCAL_RUNNER:
        return beam.Pipeline(options=options)
    return beam.Pipeline(runner=internals.provisioned_fn_api_runner(options),
                         options=options)


PLAN_FILE = "shard_pairs.jsonl"  # beside plan.json, the resume fingerprint


@dataclasses.dataclass(frozen=True)
class PlanEntry:
    """One pipeline element: a shard and where its pairs are in the plan file."""

    file: str
    offset: int
    length: int


def write_plan(pending: list[dict], parts_dir: str) -> tuple[str, list[PlanEntry]]:
    """Write the pending shards' pairs, a JSON line each; returns the plan file's path
    and the entries that find each line in it."""
    path = files.join(parts_dir, PLAN_FILE)
    entries, offset = [], 0
    with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
        for shard in pending:
            line = (json.dumps({"file": shard["file"], "split": shard["split"],
                                "refs": [sources.pair_to_json(r) for r in shard["refs"]]},
                               separators=(",", ":")) + "\n").encode()
            f.write(line)
            entries.append(PlanEntry(shard["file"], offset, len(line)))
            offset += len(line)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    return path, entries


def read_planned_shard(plan_path: str, entry: PlanEntry) -> dict:
    """A shard as the driver planned it, read from its line of the plan file."""
    with tf.io.gfile.GFile(plan_path, "rb") as f:
        f.seek(entry.offset)
        shard = json.loads(f.read(entry.length))
    shard["refs"] = [sources.pair_from_json(r) for r in shard["refs"]]
    return shard


def error_path(parts_dir: str, shard_file: str) -> str:
    """Where a worker leaves the reason a shard could not be written."""
    return files.join(parts_dir, shard_file + ".error.json")


class _PairCounter:
    """write_shard's progress hook on a worker: a Beam counter per pair."""

    def __init__(self, counter):
        self.counter = counter

    def update(self, n: int = 1) -> None:
        self.counter.inc(n)


class WriteShard(beam.DoFn):
    """Convert one planned shard's pairs and write the shard (or record why not)."""

    def __init__(self, cfg: PrepareConfig, spec: convert.ConvertSpec, parts_dir: str,
                 plan_path: str):
        self.cfg, self.spec, self.parts_dir, self.plan_path = cfg, spec, parts_dir, plan_path
        counter = beam.metrics.Metrics.counter
        self.pairs = counter(NAMESPACE, "pairs_done")
        self.bad = counter(NAMESPACE, "bad_files")
        self.written = counter(NAMESPACE, "bytes_written")
        self.failed = counter(NAMESPACE, "shards_failed")

    def setup(self):
        convert.keep_freed_memory()  # a worker process does nothing else

    def process(self, entry: PlanEntry):
        shard = read_planned_shard(self.plan_path, entry)
        results = (convert.convert(ref, self.spec) for ref in shard["refs"])
        try:
            stats = shards.write_shard(shard, results, self.cfg, self.parts_dir,
                                       self.spec.num_classes, _PairCounter(self.pairs))
        except PrepareError as e:
            self.failed.inc()
            self.bad.inc()
            files.write_json_atomic(error_path(self.parts_dir, shard["file"]),
                                     {"error": str(e)})
            return
        self.bad.inc(len(stats["skipped"]))
        self.written.inc(tf.io.gfile.stat(files.join(self.cfg.output_dir,
                                                      shard["file"])).length)
        yield shard["file"]


def _watch(job: shards.Job, stop: threading.Event, every: float = 10.0) -> None:
    """Log shards done, with rate and time left, from the sidecars the workers write.

    Works the same for every runner (Beam's own counters are only final on the
    local runner), at the cost of one listing of ``_parts/`` per line.
    """
    progress = Progress("prepare (beam)", len(job.pending), "shards", every=0.0)
    wanted = {shards.sidecar_path(job.parts_dir, s["file"]) for s in job.pending}
    while not stop.wait(every):
        done = len(wanted.intersection(tf.io.gfile.glob(files.join(job.parts_dir, "*.json"))))
        if done > progress.done:
            progress.update(done - progress.done)


def log_counters(result, namespace: str = NAMESPACE) -> dict:
    """Log and return a job's counters in ``namespace`` (what its workers did, summed
    by Beam): prepare's, and predict's (facepars.inference.beam_corpus)."""
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(namespace))
    totals = {c.key.metric.name: c.committed for c in query["counters"]}
    logging.info("beam counters: %s", ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    return totals


def build(pipeline, job: shards.Job, plan_path: str, entries: list[PlanEntry]) -> None:
    """The transforms: plan entries, spread over the workers, each shard written."""
    _ = (pipeline
         | "Shards" >> beam.Create(entries, reshuffle=False)
         | "Spread" >> beam.Reshuffle()
         | "Write" >> beam.ParDo(WriteShard(job.cfg, job.spec, job.parts_dir, plan_path)))


def write_shards(job: shards.Job) -> None:
    """Write ``job.pending`` on the Beam runner the options name; fill ``job.stats``."""
    if not job.pending:
        return
    cfg = job.cfg
    options = pipeline_options(cfg.beam_pipeline_options, cfg.workers)
    for shard in job.pending:  # from an earlier attempt whose input has since been fixed
        if tf.io.gfile.exists(error_path(job.parts_dir, shard["file"])):
            tf.io.gfile.remove(error_path(job.parts_dir, shard["file"]))
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(job, stop), daemon=True)
    watcher.start()
    plan_path, entries = write_plan(job.pending, job.parts_dir)
    try:
        with pipeline(options) as run:
            build(run, job, plan_path, entries)
        log_counters(run.result)
    finally:
        stop.set()
        watcher.join()
    for shard in job.pending:
        sidecar = shards.sidecar_path(job.parts_dir, shard["file"])
        error = error_path(job.parts_dir, shard["file"])
        if tf.io.gfile.exists(error):
            with tf.io.gfile.GFile(error) as f:
                raise PrepareError(json.load(f)["error"])
        if not tf.io.gfile.exists(sidecar):
            raise PrepareError(f"{shard['file']}: the Beam job ended without "
                                      "writing it; rerun with --resume")
        with tf.io.gfile.GFile(sidecar) as f:
            job.stats[shard["file"]] = json.load(f)
