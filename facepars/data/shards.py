"""Write a source's pairs as sharded TFRecords and a manifest, safely.

How it stays safe:

* The assignment of pairs to shards is a pure function of the inputs and the
  options (sorted ids, a seeded shuffle), so every run produces the same bytes.
* A shard is written under a temporary name in ``_parts/``, its statistics are
  saved beside it, and only then is it renamed into place. ``resume`` skips the
  shards already in place, so an interrupted run finishes byte-identical to an
  uninterrupted one. ``manifest.json`` is written last: a directory without one
  is not a finished data set.
* With ``on_error="fail"`` the first bad pair stops the run and its shard is
  never renamed into place; with ``"skip"`` bad pairs are listed in the manifest.

This module is the library both runners stand on: plan the shards
(``plan_job``), write one (``write_shard``), write the manifest (``finish``).
The runners, ``facepars.data.pool`` (a process pool on this machine) and
``facepars.data.beam`` (Dataflow, Flink or Spark), call ``write_shard`` on the
same plan, so their output is the same bytes; ``facepars.prepare.run`` picks one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import time
import uuid

import numpy as np
import tensorflow as tf
from absl import logging

import facepars
from facepars.core import classes, files
from facepars.core.errors import ConfigError, PrepareError
from facepars.data import convert, framing, schema, sources
from facepars.data.prepare_config import VAL_FRACTION, PrepareConfig
from facepars.faces import alignment, mtcnn_graph

PARTS_DIR = "_parts"
# The settings facepars.data.sources.list_source takes (with the input directory).
SOURCE_LISTING = ("source", "num_examples", "seed", "synthetic_size", "classes")
TRAIN_SPLIT = "train"  # the split the framing is measured on
_SHARD_RE = re.compile(r"^[a-z]+-\d{5}-of-\d{5}\.tfrecord$")


def split_order(split: str) -> tuple[int, str]:
    """train, val, test first, then anything else alphabetically."""
    known = ("train", "val", "test")
    return (known.index(split) if split in known else len(known), split)


def plan_shards(pairs: dict[str, list], shard_size: int, seed: int,
                num_shards: int = 0) -> list[dict]:
    """Deterministic shard plan: per split, sorted ids in a seeded order, in chunks.

    A split gets enough files for ``shard_size`` records each and at least
    ``num_shards`` (fewer only if it has fewer records), sizes differing by at
    most one: a training host count that divides the file count then reads
    whole files only (see facepars.data.pipeline).
    """
    plan = []
    for split in sorted(pairs, key=split_order):
        items = sorted(pairs[split], key=lambda p: p.source_id)
        order = np.random.default_rng([seed, len(items)]).permutation(len(items))
        items = [items[i] for i in order]
        count = max(1, -(-len(items) // shard_size), min(num_shards, len(items)))
        bounds = [len(items) * i // count for i in range(count + 1)]
        for i in range(count):
            plan.append({"split": split, "file": schema.shard_name(split, i, count),
                         "refs": items[bounds[i]:bounds[i + 1]]})
    return plan


def fingerprint(plan: list[dict], settings: dict) -> dict:
    """What a resumed run must agree on with the run it finishes."""
    ids = hashlib.sha256("\n".join(
        f"{s['file']}\t{r.source_id}" for s in plan for r in s["refs"]).encode()).hexdigest()
    return dict(settings, pairs_sha256=ids)


def prepare_output_dir(output_dir: str, resume: bool, overwrite: bool) -> None:
    tf.io.gfile.makedirs(output_dir)
    ours = [n for n in tf.io.gfile.listdir(output_dir)
            if _SHARD_RE.match(n) or n.rstrip("/") in (schema.MANIFEST, PARTS_DIR)]
    if not ours:
        return
    if overwrite:
        for name in ours:
            path = files.join(output_dir, name.rstrip("/"))
            (tf.io.gfile.rmtree if tf.io.gfile.isdir(path) else tf.io.gfile.remove)(path)
        logging.info(
            "--overwrite: removed %d earlier output entries from %s", len(ours), output_dir
        )
    elif not resume:
        raise PrepareError(
            f"{output_dir}: already holds facepars output ({', '.join(sorted(ours)[:3])}"
            f"{', ...' if len(ours) > 3 else ''}); pass --resume to finish "
            "that run or --overwrite to replace it"
        )


def check_resume(output_dir: str, parts_dir: str, expected: dict) -> dict | None:
    """Refuse to resume a run started with other inputs or settings.

    Returns the manifest when the run being resumed had already finished.
    """
    plan_path = files.join(parts_dir, "plan.json")
    manifest_path = files.join(output_dir, schema.MANIFEST)
    manifest = None
    if tf.io.gfile.exists(manifest_path):
        manifest = schema.Manifest.load(output_dir).data
        found, path = manifest["settings"], manifest_path
    elif tf.io.gfile.exists(plan_path):
        with tf.io.gfile.GFile(plan_path) as f:
            found, path = json.load(f), plan_path
    else:
        tf.io.gfile.makedirs(parts_dir)
        files.write_json_atomic(plan_path, expected)
        return None
    changed = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
    if changed:
        raise PrepareError(f"{path}: the run being resumed used different "
                           f"{', '.join(changed)}; use --overwrite to start again")
    return manifest


def write_shard(shard: dict, results, cfg: PrepareConfig, parts_dir: str,
                num_classes: int, progress) -> dict:
    """Write one shard from the next results; returns its statistics.

    ``progress.update()`` is called once per pair (a Progress here, Beam
    counters on a Beam worker). The temporary name is unique per attempt, so a
    Beam bundle retried or run twice at once never writes into another's file.
    """
    final = files.join(cfg.output_dir, shard["file"])
    tmp = files.join(parts_dir, f"{shard['file']}.{uuid.uuid4().hex[:12]}.tmp")
    pixels = np.zeros(num_classes, np.int64)
    images = np.zeros(num_classes, np.int64)
    skipped, points, count = [], [], 0
    with tf.io.TFRecordWriter(tmp) as writer:
        for _ in shard["refs"]:
            r = next(results)
            progress.update()
            if isinstance(r, convert.Failed):
                if cfg.on_error == "fail":
                    writer.close()
                    tf.io.gfile.remove(tmp)
                    raise PrepareError(f"{r.error} (pair {r.source_id}; rerun with --resume "
                                       "--on_error=skip to convert the rest and list it)")
                skipped.append(
                    {"split": shard["split"], "source_id": r.source_id, "error": r.error}
                )
                logging.warning("skipped %s", r.error)
                continue
            writer.write(schema.make_example(r.source_id, r.image, cfg.image_format, r.mask,
                                             cfg.image_size, cfg.image_size))
            pixels += r.class_pixels
            images += r.class_pixels > 0
            if r.points is not None:
                points.append(np.round(r.points, 2).tolist())
            count += 1
    stats = {"file": shard["file"], "split": shard["split"], "num_records": count,
             "sha256": files.file_sha256(tmp), "bytes": tf.io.gfile.stat(tmp).length,
             "class_pixels": pixels.tolist(),
             "class_images": images.tolist(), "skipped": skipped, "face_points": points}
    files.write_json_atomic(sidecar_path(parts_dir, shard["file"]), stats)
    tf.io.gfile.rename(tmp, final, overwrite=True)
    return stats


def sidecar_path(parts_dir: str, shard_file: str) -> str:
    """Where a written shard's statistics wait for the manifest."""
    return files.join(parts_dir, shard_file + ".json")


def build_manifest(shard_stats: list[dict], listing_skips: list[dict], settings: dict,
                   table: classes.ClassTable, lookup, input_dir: str | None) -> dict:
    splits: dict[str, dict] = {}
    for s in shard_stats:
        split = splits.setdefault(s["split"], {"num_records": 0, "shards": [],
                                               "class_pixels": [0] * table.num_classes,
                                               "class_images": [0] * table.num_classes})
        split["num_records"] += s["num_records"]
        split["shards"].append({k: s[k] for k in ("file", "num_records", "sha256", "bytes")})
        for key in ("class_pixels", "class_images"):
            split[key] = [a + b for a, b in zip(split[key], s[key])]
    return {
        "format_version": schema.FORMAT_VERSION,
        "source": settings["source"],
        "input_dir": input_dir,
        "class_table": table.to_json(),
        "image_size": settings["image_size"],
        "resize": settings["resize"],
        "image_format": settings["image_format"],
        "settings": settings,
        # What evaluating at original resolution needs to find and label the
        # source photos again (schema.Manifest.source_listing, .source_lookup).
        "source_listing": {k: settings[k] for k in SOURCE_LISTING},
        "source_lookup": [int(v) for v in lookup],
        # Where faces sit in the training crops: the template they were aligned
        # to, or measured from the masks (facepars.data.framing).
        "framing": ({"mode": settings["align"],
                     "points": alignment.template(settings["image_size"]).round(2).tolist()}
                    if settings["align"] != "none" else
                    framing.median_framing([p for s in shard_stats if s["split"] == TRAIN_SPLIT
                                            for p in s["face_points"]])),
        "splits": splits,
        "skipped": listing_skips + [k for s in shard_stats for k in s["skipped"]],
        "command": sys.argv,
        "facepars_version": facepars.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclasses.dataclass
class Job:
    """A planned conversion: what is left to write and what is already done."""

    cfg: PrepareConfig
    spec: convert.ConvertSpec
    table: classes.ClassTable
    plan: list[dict]           # every shard, in manifest order
    pending: list[dict]        # the shards still to write
    stats: dict[str, dict]     # file -> statistics of the shards already written
    listing_skips: list[dict]  # pairs the listing itself rejected (on_error="skip")
    settings: dict             # what the manifest records and a resume must match
    parts_dir: str


def plan_job(cfg: PrepareConfig) -> Job | dict:
    """List the source, plan the shards, check the output directory.

    Returns the manifest instead when the run being resumed had already finished.
    Every runner starts here, so they all convert the same pairs into the same files.
    """
    try:
        table, lut, valid = sources.source_table(cfg.source, cfg.input_dir,
                                                 cfg.classes).target(cfg.taxonomy)
    except ConfigError as e:
        raise PrepareError(str(e)) from None
    if cfg.align == "detect":
        mtcnn_graph.check_installed()  # before any worker starts
    if cfg.align == "landmarks" and cfg.source not in sources.SOURCES_WITH_LANDMARKS:
        raise PrepareError(f"--align=landmarks: {cfg.source} ships no face landmarks (sources "
                           f"with them: {', '.join(sources.SOURCES_WITH_LANDMARKS)}); use "
                           "--align=none, which measures where its faces sit")
    spec = convert.ConvertSpec(cfg.source, lut, valid, table.num_classes,
                               cfg.image_size, cfg.resize, cfg.image_format, cfg.jpeg_quality,
                               framing.FramingClasses.of(table), cfg.align)
    pairs, bad = sources.list_source(cfg.source, cfg.input_dir, cfg.num_examples,
                                     cfg.seed, cfg.synthetic_size, cfg.classes)
    if bad and cfg.on_error == "fail":
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise PrepareError(f"{bad[0]}{more}; rerun with --on_error=skip to convert the rest "
                           "and list them")
    if cfg.val_fraction > 0 or ("val" not in pairs and "train" in pairs):
        fraction = cfg.val_fraction or VAL_FRACTION
        logging.info("carving %.0f%% of train into val", 100 * fraction)
        pairs = sources.carve_split(pairs, fraction, cfg.seed)
    listing_skips = [{"split": None, "source_id": None, "error": str(e)} for e in bad]

    plan = plan_shards(pairs, cfg.shard_size, cfg.seed, cfg.num_shards)
    prepare_output_dir(cfg.output_dir, cfg.resume, cfg.overwrite)
    parts_dir = files.join(cfg.output_dir, PARTS_DIR)
    settings = fingerprint(plan, cfg.settings())
    finished = check_resume(cfg.output_dir, parts_dir, settings)
    if finished is not None:
        logging.info("%s: already complete, nothing to resume", cfg.output_dir)
        return finished

    stats, pending = {}, []
    for shard in plan:
        sidecar = sidecar_path(parts_dir, shard["file"])
        if tf.io.gfile.exists(files.join(cfg.output_dir, shard["file"])) and tf.io.gfile.exists(
            sidecar
        ):
            with tf.io.gfile.GFile(sidecar) as f:
                stats[shard["file"]] = json.load(f)
        else:
            pending.append(shard)
    logging.info("%s -> %s: %d pairs in %d shards (%s), %d shards already done; %s runner, "
                 "%d workers", cfg.source, cfg.output_dir, sum(len(s["refs"]) for s in plan),
                 len(plan), ", ".join(f"{k} {len(v)}" for k, v in sorted(pairs.items())),
                 len(plan) - len(pending), cfg.runner, cfg.workers)
    return Job(cfg, spec, table, plan, pending, stats, listing_skips, settings, parts_dir)


def finish(job: Job) -> dict:
    """Write the manifest from every shard's statistics; the data set is complete after this."""
    manifest = build_manifest([job.stats[s["file"]] for s in job.plan], job.listing_skips,
                              job.settings, job.table, job.spec.lut, job.cfg.input_dir)
    files.write_json_atomic(files.join(job.cfg.output_dir, schema.MANIFEST), manifest)
    tf.io.gfile.rmtree(job.parts_dir)
    return manifest
