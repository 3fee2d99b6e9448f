"""Scoring a model on a split, ``run``: the work of ``python -m facepars.evaluate``.

The command line is facepars.evaluate, which imports this module, and with it
TensorFlow, only once its flags are checked. Code that evaluates without the
command line (tests, notebooks) calls ``run`` here.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from facepars.core import classes, files, visualize
from facepars.core.errors import ConfigError
from facepars.core.progress import Progress
from facepars.data import bad_records, convert, pipeline, schema, sources
from facepars.faces import detection
from facepars.faces.detection import FaceFilter
from facepars.inference.predictor import Predictor, choose_mode
from facepars.training import distribute
from facepars.training.metrics import (
    ConfusionMatrixMetric,
    batch_confusion,
    published_mean_f1,
    score_table,
    scores_from_confusion,
)


def network_resolution(predictor: Predictor, manifest: schema.Manifest, split: str,
                       batch_size: int, strategy: tf.distribute.Strategy) -> np.ndarray:
    """Confusion matrix of the split at the network's input size, under ``strategy``
    (TFLite and ONNX models, which run on the host, one batch at a time instead)."""
    if not predictor.in_graph:
        strategy = tf.distribute.get_strategy()  # the default: eager, this host
    with strategy.scope():
        metric = ConfusionMatrixMetric(manifest.class_table)
    cfg = pipeline.InputConfig(global_batch_size=batch_size)
    dataset = pipeline.distributed_dataset(strategy, manifest, split, False, cfg)
    steps = pipeline.eval_steps(manifest, split, cfg, distribute.num_workers(strategy))

    def step(batch):
        metric.update_state(batch["mask"], predictor.network_logits(batch["image"]))

    if predictor.in_graph:
        step = tf.function(step)
    progress = Progress(f"evaluate {split}", steps, "batches")
    with bad_records.naming_bad_records(manifest, split, False, cfg, lambda: progress.done,
                                     distribute.num_workers(strategy),
                                     distribute.worker_index(strategy)):
        for batch in dataset:
            strategy.run(step, args=(batch,))
            progress.update()
    return metric.confusion.numpy()


def original_resolution(predictor: Predictor, manifest: schema.Manifest, split: str,
                        input_dir: str | None, detector=None, *,
                        keep: FaceFilter = FaceFilter()) -> dict:
    """Confusion matrices at each source photo's own size, against its own mask.

    Two protocols on the same photos. ``oracle``: the face framed as the data
    was prepared: on the five points the crops were aligned on (the source's own,
    or the largest face the detector finds, as prepare chose them), else the
    photo as the source crops it. ``detector`` (with a detector): the
    faces it finds and ``keep`` keeps, aligned; a face it misses
    counts as all background. ``input_dir`` defaults to the one the manifest
    records. Returns ``{"oracle": cm, "detector": cm, "recall": hits / faces}``.
    """
    input_dir = input_dir or manifest.input_dir
    listing, _ = sources.list_source(input_dir=input_dir, **manifest.source_listing)
    pairs = {p.source_id: p for split_pairs in listing.values() for p in split_pairs}
    lut = manifest.source_lookup
    mode = (manifest.framing or {}).get("mode")
    aligned = mode in convert.ALIGNED_MODES
    ids = [i.decode() for b in pipeline.make_dataset(
        manifest, split, False, pipeline.InputConfig(global_batch_size=1), with_ids=True)
        for i in b["source_id"].numpy() if i]
    num_classes = manifest.class_table.num_classes
    result = {"oracle": np.zeros((num_classes, num_classes), np.int64)}
    if detector is not None:
        result["detector"] = np.zeros((num_classes, num_classes), np.int64)
    hits = 0
    progress = Progress(f"evaluate {split} at original resolution", len(ids), "photos")
    for source_id in ids:
        if source_id not in pairs:
            raise FileNotFoundError(f"{source_id}: in the shards but not under {input_dir}")
        photo, raw = pairs[source_id].load()
        points = convert.face_points(pairs[source_id], photo, mode, detector) if aligned else None
        photo, points = convert.at_mask_size(photo, points, raw.shape)
        truth = lut[raw]
        if aligned:
            oracle = predictor.predict_faces(photo, [detection.from_landmarks(points)]).labels
        else:
            oracle = np.argmax(predictor.photo_logits(photo), -1)
        result["oracle"] += batch_confusion(truth, oracle, num_classes).numpy()
        if detector is not None:
            parsed = predictor.parse_photo(photo, detector, keep)
            hit = any(detection.contains(f, points[:2].mean(0)) for f in parsed.faces) \
                if aligned else bool(parsed.faces)
            hits += hit
            result["detector"] += batch_confusion(truth, parsed.labels, num_classes).numpy()
        progress.update()
    if detector is not None:
        result["recall"] = hits / max(len(ids), 1)
    return result


def describe(confusion: np.ndarray, table: classes.ClassTable, title: str) -> dict:
    scores = scores_from_confusion(confusion, table)
    pixels = confusion.sum(1)
    published, absent = published_mean_f1(confusion)
    note = f"; no pixels of {[table.names[c] for c in absent]}, left out" if absent else ""
    print(f"\n{title}\n" + score_table(scores, table, pixels)
          + f"\nmean F1 as published (FaRL, SegFace: the {table.num_classes - 1} classes but "
          f"background, over the split) {published:.4f}{note}")
    return {"scores": scores, "published_mean_f1": published, "confusion": confusion.tolist(),
            "pixels": {n: int(p) for n, p in zip(table.names, pixels)}}


def run(model: str, data_dir: str, split: str, output_dir: str | None, *, batch_size: int = 16,
        strategy_name: str = "auto", tpu=None, original: bool = False, input_dir=None,
        faces: str = "auto", keep: FaceFilter = FaceFilter()) -> dict:
    """Scores at the network's size, and with ``original`` at the photos' own sizes.

    ``faces`` as predict's --faces: with a detector (detect, or auto when MTCNN
    is installed and the model records its framing), original resolution is
    also scored on the faces it finds.
    """
    strategy = distribute.make_strategy(strategy_name, tpu)
    manifest = schema.Manifest.load(data_dir)
    with strategy.scope():
        predictor = Predictor.load(model)
    table = manifest.class_table
    if predictor.table != table:
        raise ConfigError(f"{model} predicts {predictor.table.name} classes, "
                         f"{data_dir} holds {table.name}")
    result = {"model": model, "data_dir": data_dir, "split": split,
              "records": manifest.num_records(split)}
    cm = network_resolution(predictor, manifest, split, batch_size, strategy)
    result["network_resolution"] = describe(
        cm, table, f"{split}, {manifest.num_records(split)} records at "
                   f"{manifest.image_size}x{manifest.image_size}:")
    pictures = {"network": cm}
    if original:
        _, detector = choose_mode(faces, predictor)
        scored = original_resolution(predictor, manifest, split, input_dir, detector, keep=keep)
        result["original_resolution"] = describe(
            scored["oracle"], table, f"{split} at original resolution, faces framed as prepared:")
        pictures["original"] = scored["oracle"]
        if detector is not None:
            result["original_resolution_detected"] = describe(
                scored["detector"], table, f"{split} at original resolution, faces found by the "
                f"detector (recall {scored['recall']:.1%}; a missed face is all background):")
            result["original_resolution_detected"]["recall"] = scored["recall"]
            pictures["detected"] = scored["detector"]
    if output_dir:
        tf.io.gfile.makedirs(output_dir)
        files.write_json_atomic(files.join(output_dir, f"{split}_report.json"), result)
        for name, matrix in pictures.items():
            suffix = {"network": "", "original": "_original", "detected": "_detected"}[name]
            with tf.io.gfile.GFile(
                files.join(output_dir, f"{split}_confusion{suffix}.png"), "wb"
            ) as f:
                f.write(visualize.confusion_png(matrix, table, f"{split} ({name} resolution)"))
        print(f"\nreport: {files.join(output_dir, f'{split}_report.json')}")
    return result
