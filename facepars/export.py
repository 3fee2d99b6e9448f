r"""Export a trained model for serving and mobile: ``python -m facepars.export``.

    python -m facepars.export --model=/tmp/run --output_dir=/tmp/run/export \
        --data_dir=/tmp/syn --tflite=float32,float16,int8

Writes
  saved_model/   signatures: ``serving_default`` (uint8 images [B, H, W, 3] of any
                 size -> ``labels`` uint8 [B, H, W] and ``probabilities`` [B, H, W, C];
                 resizing as in training, and back, inside the graph),
                 ``serve_image`` (one [H, W, 3] image), ``network`` (float [B, S, S, 3]
                 in [0, 1] -> logits) and ``class_table`` (ids, names, colours);
                 the class table is also the asset ``assets/class_table.json``.
  model_float32.tflite, model_float16.tflite, model_int8.tflite
                 fixed [1, S, S, 3] input; int8 is full-integer, calibrated on
                 train-split records, with uint8 input (raw pixels) and float logits.
  class_table.json, export_report.json (parity figures).

Parity is checked here on the data's validation split: SavedModel vs Keras must
agree on >= 99.9 % of pixels, TFLite float on >= 99.5 %; int8 is reported
(target 97 %). A check that fails makes the exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np
import tensorflow as tf
from absl import app, flags

from facepars import schema
from facepars.classes import ClassTable
from facepars.data import pipeline
from facepars.inference import CLASS_TABLE, read_run_info
from facepars.models import load_model

FLAGS = flags.FLAGS

THRESHOLDS = {"saved_model": 0.999, "tflite_float32": 0.995, "tflite_float16": 0.995}


class ServingModule(tf.Module):
    """The network with pre- and post-processing in the graph, and its class table."""

    def __init__(self, network, table: ClassTable, image_size: int, resize: str):
        super().__init__()
        self.network = network
        self.image_size, self.resize = image_size, resize
        self.names = tf.constant(table.names)
        self.colors = tf.constant(table.palette())

    def _geometry(self, height, width):
        """facepars.data.images.Geometry.content_box, in graph ops."""
        size = self.image_size
        if self.resize == "stretch":
            return 0, 0, tf.constant(size), tf.constant(size)
        h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
        scale = size / tf.maximum(h, w)
        nh = tf.maximum(1, tf.cast(tf.round(h * scale), tf.int32))
        nw = tf.maximum(1, tf.cast(tf.round(w * scale), tf.int32))
        return (size - nh) // 2, (size - nw) // 2, nh, nw

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def serve(self, images):
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        top, left, h, w = self._geometry(height, width)
        x = tf.image.resize(tf.cast(images, tf.float32), tf.stack([h, w]), antialias=True)
        x = tf.image.pad_to_bounding_box(x, top, left, self.image_size, self.image_size)
        logits = tf.cast(self.network(tf.clip_by_value(x, 0, 255) / 255.0, training=False), tf.float32)
        logits = tf.image.resize(logits[:, top:top + h, left:left + w], tf.stack([height, width]))
        return {"labels": tf.cast(tf.argmax(logits, -1), tf.uint8),
                "probabilities": tf.nn.softmax(logits)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    def serve_image(self, image):
        out = self.serve(image[None])
        return {k: v[0] for k, v in out.items()}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def logits(self, images):
        return {"logits": tf.cast(self.network(images, training=False), tf.float32)}

    @tf.function(input_signature=[])
    def class_table(self):
        return {"ids": tf.range(tf.shape(self.names)[0]), "names": self.names, "colors": self.colors}


def export_saved_model(module: ServingModule, info: dict, path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asset = os.path.join(tmp, CLASS_TABLE)
        with open(asset, "w") as f:
            json.dump({k: info[k] for k in ("class_table", "image_size", "resize", "model")}, f, indent=1)
        module.table_asset = tf.saved_model.Asset(asset)
        tf.saved_model.save(module, path, signatures={
            "serving_default": module.serve, "serve_image": module.serve_image,
            "network": module.logits, "class_table": module.class_table})


def tflite_bytes(network, variant: str, calibration: np.ndarray | None) -> bytes:
    """TFLite at the network's own static input size (batch 1)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(network)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([img[None].astype(np.float32) / 255.0]
                                                    for img in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    elif variant != "float32":
        raise ValueError(f"unknown TFLite variant {variant!r}: float32, float16 or int8")
    return converter.convert()


def tflite_labels(model: bytes, images: np.ndarray) -> np.ndarray:
    interpreter = tf.lite.Interpreter(model_content=model)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    labels = []
    for image in images:
        x = image[None].astype(np.float32) / 255.0
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale + zero), 0, 255).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        labels.append(interpreter.get_tensor(out["index"])[0].argmax(-1))
    return np.stack(labels)


def records(data_dir: str, split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    manifest = schema.Manifest.load(data_dir)
    batch = next(iter(pipeline.make_dataset(manifest, split, False, pipeline.InputConfig(
        global_batch_size=min(count, manifest.num_records(split)), take=count))))
    return batch["image"].numpy(), batch["mask"].numpy()


def run(model: str, output_dir: str, data_dir: str | None, variants, parity_records: int = 64) -> dict:
    path = schema.join(model, "best.keras") if tf.io.gfile.isdir(model) else model
    info = read_run_info(os.path.dirname(path))
    network = load_model(path)
    table, size = ClassTable.from_json(info["class_table"]), info["image_size"]
    tf.io.gfile.makedirs(output_dir)
    module = ServingModule(network, table, size, info["resize"])
    saved = schema.join(output_dir, "saved_model")
    export_saved_model(module, info, saved)
    with tf.io.gfile.GFile(schema.join(output_dir, CLASS_TABLE), "w") as f:
        json.dump({k: info[k] for k in ("class_table", "image_size", "resize", "model")}, f, indent=1)
    report = {"model": model, "saved_model": saved, "tflite": {}, "agreement": {}}

    images = masks = calibration = None
    if data_dir:
        images, masks = records(data_dir, "val", parity_records)
        calibration, _ = records(data_dir, "train", 100)
        reference = np.argmax(network(images.astype(np.float32) / 255.0, training=False), -1)
        served = tf.saved_model.load(saved).signatures["serving_default"](images=tf.constant(images))
        report["agreement"]["saved_model"] = float((served["labels"].numpy() == reference).mean())
    for variant in variants:
        if variant == "int8" and calibration is None:
            raise ValueError("int8 TFLite needs --data_dir for calibration records")
        blob = tflite_bytes(network, variant, calibration)
        target = schema.join(output_dir, f"model_{variant}.tflite")
        with tf.io.gfile.GFile(target, "wb") as f:
            f.write(blob)
        report["tflite"][variant] = {"path": target, "bytes": len(blob)}
        if images is not None:
            report["agreement"][f"tflite_{variant}"] = float(
                (tflite_labels(blob, images) == reference).mean())
    report["thresholds"] = THRESHOLDS
    report["failed"] = [k for k, v in report["agreement"].items() if v < THRESHOLDS.get(k, 0.0)]
    schema.write_json_atomic(schema.join(output_dir, "export_report.json"), report)
    return report


def define_flags():
    """Command-line flags, defined only when run as a program (so modules import together)."""
    flags.DEFINE_string("model", None, "Training model_dir (best.keras) or .keras file.")
    flags.DEFINE_string("output_dir", None, "Export directory.")
    flags.DEFINE_string("data_dir", None, "Prepared data for int8 calibration and parity checks.")
    flags.DEFINE_list("tflite", ["float32", "float16", "int8"], "TFLite variants to write.")
    flags.DEFINE_integer("parity_records", 64, "Validation records used for the parity checks.")


def main(argv):
    del argv
    if not FLAGS.model or not FLAGS.output_dir:
        raise app.UsageError("--model and --output_dir are required")
    report = run(FLAGS.model, FLAGS.output_dir, FLAGS.data_dir, FLAGS.tflite, FLAGS.parity_records)
    print(f"SavedModel: {report['saved_model']}")
    for variant, item in report["tflite"].items():
        print(f"TFLite {variant}: {item['path']} ({item['bytes'] / 1e6:.2f} MB)")
    for name, value in report["agreement"].items():
        target = THRESHOLDS.get(name, 0.97)
        print(f"pixels agreeing with Keras, {name}: {value:.4%} (target {target:.1%})")
    if report["failed"]:
        print(f"export parity FAILED: {', '.join(report['failed'])}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
