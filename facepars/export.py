r"""Export a trained model for serving and mobile: ``python -m facepars.export``.

    python -m facepars.export --model_path=/tmp/run --output_dir=/tmp/run/export \
        --data_dir=/tmp/syn --tflite=float32,float16,int8

Writes
  saved_model/   signatures: ``serving_default`` (uint8 images [B, H, W, 3] of any
                 size -> ``labels`` uint8 [B, H, W] and ``probabilities`` [B, H, W, C];
                 resizing as in training, and back, inside the graph),
                 ``serve_image`` (one [H, W, 3] image), ``serving_bytes`` (encoded
                 JPEG/PNG/BMP/GIF string [B] of any sizes -> ``labels_png`` string [B],
                 ``height``, ``width``: TF Serving's REST b64 input), ``network``
                 (float [B, S, S, 3] in [0, 1] -> logits), ``class_table`` (ids, names,
                 colours) and ``parse_photos`` (encoded photos string [B] -> each photo's
                 faces found by MTCNN in the graph, aligned and parsed as ``predict``
                 does: ``labels_png``, ``height``, ``width``, ``num_faces``, ``boxes``,
                 ``landmarks``, ``scores``; facepars.inference.photo_graph),
                 written by ``keras.export.ExportArchive`` so that TF Serving and
                 ``saved_model_cli run`` load it; the class table and input
                 geometry also in ``assets.extra/class_table.json``.
  model_float32.tflite, model_float16.tflite, model_int8.tflite
                 fixed [1, S, S, 3] input; int8 is full-integer, calibrated on
                 train-split records, with uint8 input (raw pixels) and float logits.
  model.onnx, model_batch1.onnx (with --onnx)
                 the ``network`` signature through tf2onnx: [batch, S, S, 3] float
                 in [0, 1] -> logits, and the same with batch fixed at 1.
  class_table.json, export_report.json (parity figures).

Parity is checked here on the data's validation split (``--parity_split``): the
share of pixels each backend labels as Keras does, against facepars.export_lib.TARGETS. A
required check that fails makes the exit code 1.
"""

from __future__ import annotations

import sys

from absl import flags

from facepars.core import cli
from facepars.faces.detection import FaceFilter

FLAGS = flags.FLAGS


def define_flags():
    """The command line; see facepars.core.cli for the conventions all commands share."""
    flags.DEFINE_string("model_path", None, "A training model_dir (its best.keras), or a .keras "
                        "file in a run directory (its config.json beside it); local or gs://.")
    flags.DEFINE_string("output_dir", None, "Export directory.")
    flags.DEFINE_string("data_dir", None, "Prepared data for int8 calibration and parity checks.")
    flags.DEFINE_list("tflite", ["float32", "float16", "int8"], "TFLite variants to write.")
    flags.DEFINE_integer("parity_records", 64, "Records used for the parity checks.")
    flags.DEFINE_string("parity_split", "val", "The split whose first records check parity.")
    flags.DEFINE_string("calibration_split", "train", "The split int8 calibrates on.")
    flags.DEFINE_bool("onnx", False, "Also write model.onnx (dynamic batch) and model_batch1.onnx "
                      "(the facepars[onnx] extra).")
    flags.DEFINE_integer("onnx_opset", 17, "ONNX opset of --onnx.")
    cli.define_face_flags()  # for the SavedModel's parse_photos signature


def main(argv):
    del argv
    from facepars import export_lib  # TensorFlow loads here, once the flags are checked
    report = export_lib.run(
        FLAGS.model_path, FLAGS.output_dir, FLAGS.data_dir, FLAGS.tflite,
        parity_records=FLAGS.parity_records,
        onnx_opset=FLAGS.onnx_opset if FLAGS.onnx else None,
        parity_split=FLAGS.parity_split, calibration_split=FLAGS.calibration_split,
        faces=FLAGS.faces, keep=FaceFilter(FLAGS.min_score, FLAGS.min_face))
    print(f"SavedModel: {report['saved_model']}")
    whole = report["parse_photos"]
    print(f"  parse_photos (whole photos, faces found in the graph): "
          f"{'written' if whole['written'] else 'not written'} ({whole['why']})")
    for variant, item in report["tflite"].items():
        print(f"TFLite {variant}: {item['path']} ({item['bytes'] / 1e6:.2f} MB)")
    for name, path in report.get("onnx", {}).items():
        print(f"ONNX ({'batch 1' if name.endswith('1') else 'any batch'}): {path}")
    for name, value in report["agreement"].items():
        kind = "reported" if name in export_lib.REPORTED_ONLY else "required"
        print(f"pixels agreeing with Keras, {name}: {value:.4%} "
              f"(target {export_lib.TARGETS[name]:.1%}, {kind})")
    if report["failed"]:
        print(f"export parity FAILED: {', '.join(report['failed'])}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main, define_flags, required=("model_path", "output_dir"),
            inputs=("model_path", "data_dir"))
