"""Exporting a run, ``run``: the work of ``python -m facepars.export``.

The command line is facepars.export, which imports this module, and with it
TensorFlow, only once its flags are checked. Code that exports without the
command line (tests, notebooks) calls ``run`` here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import warnings

import keras
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as tflite_schema
from tensorflow.lite.tools import flatbuffer_utils

from facepars.core import files
from facepars.core.errors import ConfigError, FaceparsError
from facepars.data import pipeline, schema
from facepars.faces import mtcnn_graph
from facepars.faces.detection import FaceFilter
from facepars.inference import photo_graph, serving
from facepars.inference.predictor import (
    NO_FRAMING,
    SAVED_MODEL_TABLE,
    Predictor,
    keras_logits_fn,
    tflite_logits_fn,
)
from facepars.models import rundir, to_model_input
from facepars.models.rundir import ModelCard

# Pixels agreeing with Keras, the target per backend. Every one but int8 is
# enforced (exit code 1): int8's error depends on the model and its calibration,
# so its target is reported (a trained model reaches it; a few-step one may not).
TARGETS = {"saved_model": 0.999, "tflite_float32": 0.995, "tflite_float16": 0.995,
           "tflite_int8": 0.97, "onnx": 0.999, "onnx_batch1": 0.999}
REPORTED_ONLY = ("tflite_int8",)


class ExportError(FaceparsError):
    """An export that cannot be written; the message says why and what to do."""


def serving_archive(network, card: ModelCard, photos: FaceFilter | None = None
                    ) -> keras.export.ExportArchive:
    """The network with the serving mapping (facepars.inference.serving) around it, as
    Keras exports it.

    With ``photos``, also ``parse_photos``: whole photos through MTCNN's cascade and
    the alignment (facepars.inference.photo_graph), faces kept by that filter.

    Through ``keras.export.ExportArchive``, not ``tf.saved_model.save`` on a
    tf.Module: the archive tracks the Keras variables as the plain resource
    variables TF1-style loaders look up by name, so the SavedModel runs in a
    graph session too (TF Serving's C++ loader, ``saved_model_cli run``), not
    only under ``tf.saved_model.load``.
    """
    size, resize, table = card.image_size, card.resize, card.table

    # One trace of the network that every endpoint calls (a function call in each
    # signature's graph), rather than a trace per endpoint.
    network_fn = keras_logits_fn(network, size)

    def logits(x):
        return tf.cast(network_fn(x), tf.float32)

    def serve(images):
        return serving.parse(logits, images, size, resize)

    def serve_image(image):
        return {k: v[0] for k, v in serve(image[None]).items()}

    def serve_bytes(image_bytes):
        return serving.parse_encoded(logits, image_bytes, size, resize)

    def network_logits(images):
        return {"logits": logits(images)}

    def class_table():
        names = tf.constant(table.names)
        return {"ids": tf.range(tf.shape(names)[0]), "names": names,
                "colors": tf.constant(table.palette())}

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint("serving_default", serve,
                         [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    archive.add_endpoint("serve_image", serve_image,
                         [tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
    archive.add_endpoint("serving_bytes", serve_bytes,
                         [tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint("network", network_logits,
                         [tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
    archive.add_endpoint("class_table", class_table, [])
    if photos is not None:
        cascade = mtcnn_graph.Cascade()
        for detector_network in cascade.networks:
            archive.track(detector_network)
        def parse_photos(image_bytes):
            return photo_graph.parse_encoded(cascade, logits, image_bytes, card.points, size,
                                             table.num_classes, photos)

        archive.add_endpoint("parse_photos", parse_photos,
                             [tf.TensorSpec([None], tf.string, name="image_bytes")])
    return archive


def whole_photos(faces: str, card: ModelCard, keep: FaceFilter) -> tuple[FaceFilter | None, str]:
    """(the filter ``parse_photos`` is exported with or None, why) for export's --faces:
    auto writes it when the model records its framing and the detect extra is there."""
    try:
        mtcnn_graph.check_installed()
        missing = NO_FRAMING if card.framing is None else None
    except ConfigError as e:
        missing = str(e)
    if faces == "whole":
        return None, "--faces=whole"
    if missing is None:
        return keep, f"min_score {keep.min_score}, min_face {keep.min_face} px"
    if faces == "detect":
        raise ExportError(f"parse_photos cannot be exported: {missing}")
    return None, missing


def export_saved_model(network, card: ModelCard, path: str, photos: FaceFilter | None = None
                       ) -> None:
    with _tensorflow_quiet():
        serving_archive(network, card, photos).write_out(path, verbose=False)
    tf.io.gfile.makedirs(files.join(path, os.path.dirname(SAVED_MODEL_TABLE)))
    files.write_json_atomic(files.join(path, SAVED_MODEL_TABLE), exported_info(card, photos))


@contextlib.contextmanager
def _tensorflow_quiet():
    """Without TensorFlow's note, per signature traced, of every captured input it
    renames: thousands of names (parse_photos' loops capture hundreds), nothing a
    user acts on. It logs through absl, beside facepars's own INFO lines."""
    def keep(record: logging.LogRecord) -> bool:
        return not record.pathname.endswith("signature_serialization.py")

    absl_logger = logging.getLogger("absl")
    absl_logger.addFilter(keep)
    try:
        yield
    finally:
        absl_logger.removeFilter(keep)


def exported_info(card: ModelCard, photos: FaceFilter | None) -> dict:
    """class_table.json of an export: the run's ModelCard, and the detection settings
    ``parse_photos`` was exported with (None: no such signature)."""
    return {**card.to_json(),
            "parse_photos": dataclasses.asdict(photos) if photos else None}


def tflite_models(network, variants, calibration: np.ndarray | None) -> dict[str, bytes]:
    """Each TFLite variant, at the network's own static input size (batch 1).

    Converted from the network's inference function, traced once for every
    variant, with its variables frozen into constants: the converter's default
    for a function (and ``from_keras_model``'s) writes the function as a
    SavedModel and loads that back per variant, several times the CPU for the
    same model (BUILD_NOTES.md, "Serving"). That path names the model's inputs
    and outputs in a ``serving_default`` signature, which the frozen one lacks:
    ``_with_signature`` adds it, so LiteRT's signature runner takes the model as
    it did.
    """
    if not variants:
        return {}
    inputs = [tf.TensorSpec(x.shape, x.dtype, name=x.name) for x in network.inputs]
    function = tf.function(functools.partial(network.__call__, training=False)
                           ).get_concrete_function(*inputs)
    with warnings.catch_warnings():
        # int8's input scale comes from the calibration, not from the stats this
        # warns about (its agreement with Keras: tests/test_export.py).
        warnings.filterwarnings("ignore", "Statistics for quantized inputs")
        return {variant: _with_signature(_converter(function, network, variant, calibration)
                                         .convert(), [x.name for x in inputs])
                for variant in variants}


def _converter(function, network, variant: str, calibration):
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], network)
    converter.experimental_lower_to_saved_model = False  # freeze: no SavedModel round trip
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([to_model_input(img[None]).numpy()]
                                                    for img in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    elif variant != "float32":
        raise ExportError(f"unknown TFLite variant {variant!r}: float32, float16 or int8")
    return converter


def _with_signature(model: bytes, input_names: list[str]) -> bytes:
    """The model with a ``serving_default`` signature over its one graph: its inputs
    by the Keras input names, its outputs ``output_0``, ... (the SavedModel path's
    names for an unnamed output)."""
    flat = flatbuffer_utils.convert_bytearray_to_object(model)
    graph = flat.subgraphs[0]

    def tensor_map(name, index):
        entry = tflite_schema.TensorMapT()
        entry.name, entry.tensorIndex = name, index
        return entry

    signature = tflite_schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = "serving_default", 0
    signature.inputs = [tensor_map(n, i) for n, i in zip(input_names, graph.inputs, strict=True)]
    signature.outputs = [tensor_map(f"output_{k}", i) for k, i in enumerate(graph.outputs)]
    flat.signatureDefs = [signature]
    return flatbuffer_utils.convert_object_to_bytearray(flat)


def _set_batch(model, dim) -> None:
    """Name (str) or fix (int) the batch dimension of every graph input and output."""
    for value in list(model.graph.input) + list(model.graph.output):
        batch = value.type.tensor_type.shape.dim[0]
        if isinstance(dim, int):
            batch.dim_value = dim
        else:
            batch.dim_param = dim


def export_onnx(saved_model: str, output_dir: str, opset: int) -> dict[str, str]:
    """ONNX from the SavedModel's ``network`` signature: a batch-dynamic and a batch-1 model.

    Converted from the SavedModel, not from the Keras network: there the
    constants Keras layers capture (EfficientNet's input normalisation) are
    already frozen, while tf2onnx's function path turns them into extra graph
    inputs. In this process, through tf2onnx's API (what its command line runs
    for ``--saved-model``), not its command line: that one starts TensorFlow
    again. The batch-1 copy is for runtimes that want static shapes.
    """
    try:
        import onnx
        from tf2onnx import convert, tf_loader
    except ImportError:
        raise ExportError("--onnx needs the onnx extra: pip install 'facepars[onnx]'") from None
    tf2onnx_log = logging.getLogger("tf2onnx")
    level = tf2onnx_log.level
    tf2onnx_log.setLevel(logging.WARNING)  # its INFO line per stage: a report of its own
    try:
        graph_def, inputs, outputs, renamed = tf_loader.from_saved_model(
            saved_model, None, None, tag=["serve"], signatures=["network"],
            return_tensors_to_rename=True)
        model, _ = convert.from_graph_def(graph_def, name=saved_model, input_names=inputs,
                                          output_names=outputs, opset=opset,
                                          tensors_to_rename=renamed)
    except Exception as e:  # tf2onnx raises what its converters raise
        raise ExportError(f"tf2onnx could not convert {saved_model}: "
                          f"{type(e).__name__}: {e}") from e
    finally:
        tf2onnx_log.setLevel(level)
    paths = {}
    for name, batch in (("onnx", "batch"), ("onnx_batch1", 1)):
        _set_batch(model, batch)
        onnx.checker.check_model(model)
        paths[name] = files.join(output_dir, f"model{name[4:]}.onnx")
        with tf.io.gfile.GFile(paths[name], "wb") as f:
            f.write(model.SerializeToString())
    return paths


def run(model: str, output_dir: str, data_dir: str | None, variants, *, parity_records: int = 64,
        onnx_opset: int | None = None, parity_split: str = "val",
        calibration_split: str = "train", faces: str = "auto",
        keep: FaceFilter = FaceFilter()) -> dict:
    """Write the exports; with ``data_dir``, check each against Keras on the first
    records of ``parity_split``, and calibrate int8 on ``calibration_split``'s.

    ``onnx_opset``: also write ONNX models at this opset (None: no ONNX). ``faces``
    and ``keep``: whether the SavedModel gets ``parse_photos`` (``whole_photos``)
    and which detected faces it parses.
    """
    manifest = schema.Manifest.load(data_dir) if data_dir else None
    if "int8" in variants and manifest is None:
        raise ExportError("int8 TFLite needs --data_dir for calibration records")
    for split in (parity_split, calibration_split) if manifest else ():
        manifest.split(split)  # before any work: a missing split named, with those there are
    network, card = rundir.load(model)
    photos, why = whole_photos(faces, card, keep)
    tf.io.gfile.makedirs(output_dir)
    saved = files.join(output_dir, "saved_model")
    export_saved_model(network, card, saved, photos)
    files.write_json_atomic(files.join(output_dir, rundir.CLASS_TABLE),
                            exported_info(card, photos))
    report = {"model": model, "saved_model": saved, "tflite": {}, "agreement": {},
              "parse_photos": {"written": photos is not None, "why": why}}

    images = calibration = reference = None
    if manifest:
        images, _ = pipeline.first_records(manifest, parity_split, parity_records)
        calibration, _ = pipeline.first_records(manifest, calibration_split, 100)
        reference = np.argmax(Predictor(lambda x: network(x, training=False), card)
                              .network_logits(images), -1)
        served = Predictor.load(saved).network_logits(images)
        report["agreement"]["saved_model"] = float((np.argmax(served, -1) == reference).mean())
    for variant, blob in tflite_models(network, variants, calibration).items():
        target = files.join(output_dir, f"model_{variant}.tflite")
        with tf.io.gfile.GFile(target, "wb") as f:
            f.write(blob)
        report["tflite"][variant] = {"path": target, "bytes": len(blob)}
        if images is not None:
            lite = Predictor(tflite_logits_fn(blob), card).network_logits(images)
            report["agreement"][f"tflite_{variant}"] = float(
                (np.argmax(lite, -1) == reference).mean()
            )
    if onnx_opset is not None:
        report["onnx"] = export_onnx(saved, output_dir, onnx_opset)
        for name, path in report["onnx"].items():
            if images is not None:
                logits = Predictor.load(path).network_logits(images)
                report["agreement"][name] = float((np.argmax(logits, -1) == reference).mean())
    report["targets"] = {k: TARGETS[k] for k in report["agreement"]}
    report["failed"] = [k for k, v in report["agreement"].items()
                        if k not in REPORTED_ONLY and v < TARGETS[k]]
    files.write_json_atomic(files.join(output_dir, "export_report.json"), report)
    return report
