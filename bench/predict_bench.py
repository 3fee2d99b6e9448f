"""Parsing speed per backend, side by side: photos/s of ``Predictor`` on one 640x480 photo.

    python bench/predict_bench.py [--rounds 5] [--model lraspp_mobilenetv3 --width 0.5 --size 128]

The demo's model shape (LR-ASPP, width 0.5, 128 px; weights random: speed does
not depend on them) saved as a run, exported (SavedModel, TFLite float32, ONNX),
then timed in interleaved rounds, so a busy machine slows every row alike:

  whole   ``Predictor.predict``: the photo resized whole into the network;
  faces   ``Predictor.predict_faces`` with one face's five points given;

over the Keras run (traced once, as Predictor runs it, and called eagerly, as it
did before), its SavedModel, TFLite and ONNX Runtime, plus MTCNN alone on the
photo (the detect extra). Prints photos/s and each row's ratio to the
SavedModel's in the same rounds.

Then whole photos with detection (the detect extra), on 640x480 photos with one
and with three real faces (the astronaut's head, placed by
synthetic.moving_faces), for the Keras run and its SavedModel:

  package     the mtcnn package's pipeline, then ``predict_faces``: the path
              before facepars.faces.mtcnn_graph, the baseline of each row's ratio;
  graph det.  facepars's MTCNN (graph ops), then ``predict_faces``;
  one graph   ``Predictor.parse_photo``: detection, alignment, parsing and
              merging in one traced function, as ``predict`` runs photos;

plus the exported ``parse_photos`` signature on the encoded JPEG, and the
process's resident memory over a corpus of ``--corpus`` photos of varied sizes
through ``parse_photo`` (it stays flat: one trace for every size).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from facepars import export_lib
from facepars.core import imaging
from facepars.core.classes import TAXONOMIES
from facepars.data import synthetic
from facepars.faces import alignment, detection
from facepars.inference.predictor import Predictor
from facepars.models import build_model, rundir

from common import PackageMTCNN, astronaut_sprite


def make_run(root: str, model: str, width: float, size: int) -> str:
    """A run directory (best.keras + config.json) of a randomly initialised network."""
    run = os.path.join(root, "run")
    os.makedirs(run)
    keras.utils.set_random_seed(0)
    build_model(model, 8, size, width=width).save(os.path.join(run, rundir.BEST))
    framing = {"mode": "landmarks", "points": alignment.template(size).tolist()}
    with open(os.path.join(run, rundir.CONFIG), "w") as f:
        json.dump({"model": model, "image_size": size, "resize": "stretch", "framing": framing,
                   "class_table": TAXONOMIES["seed8"].table.to_json()}, f)
    return run


def rate(fn, seconds: float) -> float:
    """Calls per second over at least ``seconds`` (after one warm-up call)."""
    fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 2:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="per row and round")
    parser.add_argument("--model", default="lraspp_mobilenetv3")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--corpus", type=int, default=300)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="predict_bench_")
    run = make_run(root, args.model, args.width, args.size)
    out = os.path.join(root, "export")
    export_lib.run(run, out, None, ["float32"], onnx_opset=17)
    photo, _, points = synthetic.render_with_landmarks(3, 0, 480, 640)
    face = [detection.from_landmarks(points)]
    backends = {"keras": run, "saved_model": os.path.join(out, "saved_model"),
                "tflite_float32": os.path.join(out, "model_float32.tflite"),
                "onnx": os.path.join(out, "model.onnx")}
    predictors = {name: Predictor.load(path) for name, path in backends.items()}
    # The Keras network called eagerly, as Predictor did before it traced it once.
    network, card = rundir.load(run)
    predictors["keras, eager call"] = Predictor(lambda x: network(x, training=False), card)
    rows = {}
    for name, p in predictors.items():
        rows[f"{name}, whole"] = lambda p=p: p.predict(photo)
        rows[f"{name}, faces"] = lambda p=p: p.predict_faces(photo, face)
    detector = detection.default_detector()
    if detector is not None:
        rows["mtcnn alone"] = lambda: detector(photo)
    median = timed(rows, args)
    print(f"\n{args.model} width {args.width}, {args.size} px; one 640x480 photo; "
          f"median of {args.rounds} rounds")
    print(f"{'':28s}{'photos/s':>10s}{'vs SavedModel':>15s}")
    for name, value in median.items():
        kind = "faces" if name.endswith("faces") else "whole"
        base = median.get(f"saved_model, {kind}")
        ratio = f"{value / base:.2f}x" if base and name != "mtcnn alone" else ""
        print(f"{name:28s}{value:10.1f}{ratio:>15s}")
    if detector is not None:
        whole_photos(predictors, backends["saved_model"], detector, args)


def timed(rows: dict, args) -> dict[str, float]:
    """Each row's median calls/s over interleaved rounds."""
    rates = {name: [] for name in rows}
    for r in range(args.rounds):
        for name, fn in rows.items():
            rates[name].append(rate(fn, args.seconds))
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    return {name: float(np.median(v)) for name, v in rates.items()}


def whole_photos(predictors, saved_model: str, detector, args) -> None:
    """Photos/s of whole photos with detection, each way against the package's path."""
    import tensorflow as tf
    package = PackageMTCNN()
    sprite = astronaut_sprite()
    served = tf.saved_model.load(saved_model).signatures["parse_photos"]
    rows = {}
    for count in (1, 3):
        photo = next(synthetic.moving_faces(0, 1, 480, 640, face_width=0.2,
                                            sprites=[sprite] * count)).image
        assert len(detection.find(detector, photo)) == count
        for name in ("keras", "saved_model"):
            p = predictors[name]
            rows[name, count, "package"] = lambda p=p, x=photo: p.predict_faces(
                x, detection.find(package, x))
            rows[name, count, "graph det."] = lambda p=p, x=photo: p.predict_faces(
                x, detection.find(detector, x))
            rows[name, count, "one graph"] = lambda p=p, x=photo: p.parse_photo(x, detector)
        jpeg = tf.constant([imaging.encode_image(photo, "jpeg")])
        rows["parse_photos", count, "one graph"] = lambda b=jpeg: served(image_bytes=b)
    median = timed(rows, args)
    print(f"\nwhole photos with detection, 640x480, median of {args.rounds} rounds")
    print(f"{'':44s}{'photos/s':>10s}{'vs package':>12s}")
    for (name, count, way), value in median.items():
        base = median.get((name, count, "package"), median[("saved_model", count, "package")])
        print(f"{name + ', ' + str(count) + ' face(s), ' + way:44s}{value:10.1f}"
              f"{value / base:11.2f}x")
    corpus_memory(predictors["saved_model"], detector, args.corpus)


def corpus_memory(predictor, detector, photos: int) -> None:
    """Resident memory while ``parse_photo`` runs over photos of varied sizes."""
    import resource
    rng = np.random.default_rng(0)
    marks = {}
    for i in range(photos):
        height, width = (int(v) for v in rng.integers(240, 900, 2))
        photo = synthetic.compose(11, i, height, width, 2)[0]
        predictor.parse_photo(photo, detector)
        if i + 1 in (photos // 6, photos):
            marks[i + 1] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (first, a), (last, b) = marks.items()
    print(f"memory: peak RSS {a:.0f} MiB after {first} photos of 240-900 px, {b:.0f} MiB "
          f"after {last} (x{b / a:.2f})")

if __name__ == "__main__":
    main()
