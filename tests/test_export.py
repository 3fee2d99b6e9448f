import base64
import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from facepars import export_lib
from facepars.data import synthetic
from facepars.inference.predictor import Predictor
from facepars.models import rundir

from conftest import run_launched, shared


@pytest.fixture(scope="session")
def exported(trained_run, face_data, tmp_path_factory):
    """The shared trained run exported once to every target: (report, directory)."""
    def make(out):
        export_lib.run(trained_run, out, face_data, ["float32", "float16", "int8"],
                       parity_records=8, onnx_opset=17)
    out = pathlib.Path(shared(tmp_path_factory, "exported", make))
    return json.load(open(out / "export_report.json")), out


@pytest.mark.slow
def test_export_saved_model_and_tflite_with_parity(exported, trained_run, face_data, tmp_path):
    report, out = exported
    agreement = report["agreement"]
    assert agreement["saved_model"] >= 0.999
    assert agreement["onnx"] >= 0.999 and agreement["onnx_batch1"] >= 0.999
    assert agreement["tflite_float32"] >= 0.995 and agreement["tflite_float16"] >= 0.995
    # int8's target (export_lib.TARGETS) is reported, not required; this tiny model's floor:
    assert agreement["tflite_int8"] >= 0.90
    assert report["failed"] == []
    table = json.load(open(out / "class_table.json"))
    assert table["class_table"]["classes"][7]["name"] == "glasses"
    # Each TFLite model takes LiteRT's signature runner by the Keras input's name; the
    # float32 one gives the Keras network's logits on a crop.
    from ai_edge_litert.interpreter import Interpreter
    keras_run = Predictor.load(trained_run)
    crop = np.random.default_rng(0).integers(0, 256, (1, 96, 96, 3), np.uint8)
    for variant in ("float32", "float16", "int8"):
        lite = Interpreter(model_path=str(out / f"model_{variant}.tflite"))
        assert lite.get_signature_list() == {
            "serving_default": {"inputs": ["image"], "outputs": ["output_0"]}}, variant
        if variant == "float32":
            logits = lite.get_signature_runner()(image=crop / np.float32(255))["output_0"]
            np.testing.assert_allclose(logits, keras_run.network_logits(crop), atol=1e-3)
    # Whole photos around the exports: each carries the run's framing.
    framing = keras_run.framing
    assert framing is not None
    for target in ("saved_model", "model_float32.tflite", "model.onnx"):
        np.testing.assert_allclose(Predictor.load(str(out / target)).framing, framing)

    # evaluate takes every export (TFLite and ONNX run on the host) and scores the
    # split as the Keras run does.
    from facepars import evaluate_lib
    scores = {}
    for name in ("best.keras", "saved_model", "model_float32.tflite", "model_int8.tflite",
                 "model.onnx"):
        path = os.path.join(trained_run, name) if name.endswith(".keras") else \
            str(out / name)
        result = evaluate_lib.run(path, face_data, "val", str(tmp_path / "eval" / name),
                                  batch_size=4, strategy_name="one_device")
        scores[name] = result["network_resolution"]["scores"]["iou/mean_face"]
    for name, score in scores.items():
        tolerance = 0.03 if "int8" in name else 0.01
        assert abs(score - scores["best.keras"]) <= tolerance, scores

    from facepars.data.schema import ManifestError
    with pytest.raises(ManifestError, match="no split 'holdout'.*has train, val, test"):
        export_lib.run(trained_run, str(tmp_path / "other"), face_data, [],
                       parity_split="holdout")

    # A process with TensorFlow alone, no facepars: two input sizes, one image (its
    # values against the Keras run's Predictor), and the class table.
    photo = synthetic.render(5, 1, 90, 110)[0]
    expected = keras_run.predict(photo, probabilities=True)
    np.savez(tmp_path / "one.npz", photo=photo, probabilities=expected.probabilities)
    code = f"""
import numpy as np, tensorflow as tf, sys
assert 'facepars' not in sys.modules
m = tf.saved_model.load({str(out / 'saved_model')!r})
for h, w in ((100, 70), (64, 200)):
    out = m.signatures['serving_default'](images=tf.zeros((2, h, w, 3), tf.uint8))
    assert out['labels'].shape == (2, h, w) and out['labels'].dtype == tf.uint8
    assert out['probabilities'].shape == (2, h, w, 8)
ref = np.load({str(tmp_path / 'one.npz')!r})
one = m.signatures['serve_image'](image=tf.constant(ref['photo']))
assert one['labels'].shape == (90, 110)
assert np.abs(one['probabilities'].numpy() - ref['probabilities']).max() <= 1e-4
assert (one['labels'].numpy() == ref['probabilities'].argmax(-1)).mean() >= 0.999
names = m.signatures['class_table']()['names'].numpy()
assert names[6] == b'ears', names
print('ok')
"""
    proc = run_launched(["-c", code], kind="tensorflow")
    assert proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


_SESSION = """
import base64, json, sys, numpy as np, tensorflow as tf
tf.compat.v1.disable_eager_execution()
model, signature, *paths = sys.argv[1:]
with tf.compat.v1.Session(graph=tf.Graph()) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], model)
    sig = meta.signature_def[signature]
    photos = np.array([open(p, "rb").read() for p in paths], dtype=object)
    try:
        got = sess.run({k: v.name for k, v in sig.outputs.items()},
                       {sig.inputs["image_bytes"].name: photos})
    except tf.errors.InvalidArgumentError as e:
        print(json.dumps({"refused": e.message.splitlines()[0]}))
        sys.exit(0)
print(json.dumps({k: [base64.b64encode(x).decode() for x in v] if v.dtype == object
                  else v.tolist() for k, v in got.items()}))
"""


def _in_graph_session(saved_model, signature: str, paths) -> dict:
    """A bytes signature run on files in a TF1 graph session, as TF Serving runs it, in
    a process with TensorFlow only: its outputs (bytes decoded from base64), or
    ``{"refused": the error's first line}`` when the batch is refused."""
    proc = run_launched(["-c", _SESSION, str(saved_model), signature, *map(str, paths)],
                        kind="tensorflow")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: [base64.b64decode(x) for x in v] if k == "labels_png" else v
            for k, v in out.items()}


def _run_with_resize(trained_run, tmp_path, resize):
    """The trained network as a run whose data was prepared with ``resize``."""
    run = tmp_path / f"run_{resize}"
    run.mkdir()
    shutil.copy(os.path.join(trained_run, rundir.BEST), run / rundir.BEST)
    info = json.load(open(os.path.join(trained_run, rundir.CONFIG)))
    json.dump({**info, "resize": resize}, open(run / rundir.CONFIG, "w"))
    return str(run)


@pytest.mark.slow
@pytest.mark.parametrize("resize", ["stretch", "pad"])
def test_saved_model_and_tflite_give_predictors_probabilities_at_odd_sizes(
        exported, trained_run, tiny_run, tmp_path, resize):
    """What users see, at sizes other than the network's: probabilities from the
    SavedModel (in Python and in a graph session, as TF Serving loads it) and from
    TFLite against the Keras Predictor. A mapping that differs in the graph (box,
    resize, rounding) or a variable not restored fails it; argmax agreement alone
    would hide both."""
    # The shared export is the run's own mode (stretch) and has every target. The
    # serving graph's other branch gets a SavedModel of its own, of the tiny run (the
    # mapping is the graph's, not the network's); TFLite and ONNX take the network's
    # fixed input and Predictor's own mapping, so one mode tests them.
    stretch = resize == "stretch"
    assert rundir.read_card(trained_run).resize == "stretch"
    if stretch:
        run, out = trained_run, exported[1]
    else:
        run, out = _run_with_resize(tiny_run, tmp_path, resize), tmp_path / "export"
        export_lib.run(run, str(out), None, [], faces="whole")  # parse_photos: the shared export
    photos = [synthetic.render(5, i, h, w)[0] for i, (h, w) in enumerate([(37, 53), (120, 71)])]
    reference = Predictor.load(run)
    backends = [("saved_model", 1e-4)]
    if stretch:
        backends += [("model_float32.tflite", 1e-3), ("model.onnx", 1e-4)]
    for backend, tolerance in backends:
        predictor = Predictor.load(str(out / backend))
        for photo in photos:
            diff = np.abs(predictor.predict(photo, True).probabilities
                          - reference.predict(photo, True).probabilities).max()
            assert diff <= tolerance, (backend, photo.shape, diff)

    # saved_model_cli runs the signature in a TF1 graph session, as TF Serving does.
    batch = np.stack([photos[0], photos[0][::-1]])
    np.save(tmp_path / "batch.npy", batch)
    proc = run_launched(["-m", "tensorflow.python.tools.saved_model_cli", "run",
                         "--dir", str(out / "saved_model"), "--tag_set", "serve",
                         "--signature_def", "serving_default",
                         "--inputs", f"images={tmp_path / 'batch.npy'}",
                         "--outdir", str(tmp_path / "cli")], kind="tensorflow")
    assert proc.returncode == 0, proc.stderr[-3000:]
    probabilities = np.load(tmp_path / "cli" / "probabilities.npy")
    labels = np.load(tmp_path / "cli" / "labels.npy")
    expected = reference.predict_batch(list(batch), True)
    assert labels.shape == (2, 37, 53) and labels.dtype == np.uint8
    for i, prediction in enumerate(expected):
        assert np.abs(probabilities[i] - prediction.probabilities).max() <= 1e-4
        assert (labels[i] == prediction.labels).mean() >= 0.999

    # serving_bytes in a TF1 graph session, as TF Serving runs it: encoded photos of
    # different sizes and formats in one batch (a JPEG stored on its side with EXIF
    # orientation 6) give Predictor's labels on the same files.
    import io

    from PIL import Image

    from facepars.core import imaging
    paths = []
    for i, (fmt, h, w) in enumerate([("JPEG", 45, 61), ("PNG", 80, 33), ("BMP", 29, 50),
                                     ("GIF", 64, 64)]):
        image = Image.fromarray(synthetic.render(6, i, h, w)[0])
        paths.append(tmp_path / f"photo{i}.{fmt.lower()}")
        exif = Image.Exif()
        if fmt == "JPEG":
            exif[0x0112] = 6
        image.save(paths[-1], fmt, **({"exif": exif} if fmt == "JPEG" else {}))
    served = _in_graph_session(out / "saved_model", "serving_bytes", paths)
    for i, path in enumerate(paths):
        photo = imaging.read_image(str(path), apply_exif=True)[0]
        labels = np.asarray(Image.open(io.BytesIO(served["labels_png"][i])))
        assert (served["height"][i], served["width"][i]) == photo.shape[:2] == labels.shape
        np.testing.assert_array_equal(labels, reference.predict(photo).labels, str(path))


@pytest.mark.slow
def test_parse_photos_finds_aligns_and_parses_every_face_in_a_graph_session(
        exported, trained_run, tmp_path):
    """The SavedModel parses whole photos by itself, in the graph session TF Serving
    uses: a batch of sizes and formats (a portrait JPEG stored on its side with EXIF
    orientation 6, a PNG group of two, a BMP with no face, a tall PNG) gives, per
    photo, predict's labels (Predictor.predict_faces on the detector's faces) on at
    least 99.5 % of pixels, its faces padded to the batch's largest count, and the
    size upright. A photo that cannot be decoded refuses the batch."""
    import io

    import skimage.data
    from PIL import Image

    from facepars.core import imaging
    from facepars.faces import detection
    report, out = exported
    assert report["parse_photos"]["written"]
    photos = {"portrait.jpg": np.rot90(skimage.data.astronaut(), 1),
              "two.png": synthetic.compose(3, 0, 480, 640, 3)[0],
              "none.bmp": skimage.data.coffee()[:300, :451],
              "tall.png": synthetic.compose(7, 3, 700, 300, 2)[0]}
    paths = []
    for name, photo in photos.items():
        paths.append(tmp_path / name)
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(photo).save(paths[-1], **({"exif": exif} if "portrait" in name else {}))
    served = _in_graph_session(out / "saved_model", "parse_photos", paths)
    predictor, detector = Predictor.load(trained_run), detection.MTCNNDetector()
    assert served["num_faces"] == [1, 2, 0, 2]
    assert np.shape(served["boxes"]) == (4, 2, 4) and np.shape(served["landmarks"]) == (4, 2, 5, 2)
    for i, path in enumerate(paths):
        photo = imaging.read_image(str(path), apply_exif=True)[0]
        faces = detection.find(detector, photo)
        labels = np.asarray(Image.open(io.BytesIO(served["labels_png"][i])))
        assert (served["height"][i], served["width"][i]) == photo.shape[:2] == labels.shape
        assert (labels == predictor.predict_faces(photo, faces).labels).mean() >= 0.995, path
        count = served["num_faces"][i]
        assert count == len(faces)
        np.testing.assert_allclose(served["boxes"][i][:count], [f.box for f in faces], atol=0.01)
        np.testing.assert_allclose(served["landmarks"][i][:count], [f.landmarks for f in faces],
                                   atol=0.01)
        np.testing.assert_allclose(served["scores"][i][:count], [f.score for f in faces],
                                   atol=1e-5)
        assert not np.any(served["boxes"][i][count:])  # padding
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    refused = _in_graph_session(out / "saved_model", "parse_photos", [paths[1], broken])
    assert "refused" in refused, refused


@pytest.mark.slow
def test_deeplabv3plus_exports_to_onnx_with_its_constants_frozen(trained_run, tmp_path):
    """DeepLabV3+-EfficientNetB0, whose Keras layers capture constants (the input
    normalisation) that tf2onnx's function path turned into extra graph inputs:
    from its SavedModel it converts, and ONNX Runtime gives Keras's probabilities."""
    import keras

    from facepars.models import build_model
    run = tmp_path / "deeplab"
    run.mkdir()
    keras.utils.set_random_seed(0)
    build_model("deeplabv3plus_efficientnetb0", 8, 64, width=0.25).save(run / rundir.BEST)
    info = json.load(open(os.path.join(trained_run, rundir.CONFIG)))
    json.dump({**info, "model": "deeplabv3plus_efficientnetb0", "image_size": 64},
              open(run / rundir.CONFIG, "w"))
    report = export_lib.run(str(run), str(tmp_path / "export"), None, [], onnx_opset=17,
                            faces="whole")
    assert set(report["onnx"]) == {"onnx", "onnx_batch1"}
    import onnx
    graph = onnx.load(str(tmp_path / "export" / "model.onnx")).graph
    assert len(graph.input) == 1, [i.name for i in graph.input]  # no constant left as an input
    photo = synthetic.render(5, 2, 80, 60)[0]
    reference = Predictor.load(str(run)).predict(photo, True).probabilities
    got = Predictor.load(str(tmp_path / "export" / "model.onnx")).predict(photo, True)
    assert np.abs(got.probabilities - reference).max() <= 1e-4


def test_a_saved_model_tf2onnx_cannot_convert_is_refused_naming_it(tmp_path):
    """What tf2onnx raises comes back as export's own error, naming the SavedModel
    and tf2onnx's reason (here: no ``network`` signature), and its INFO lines stay
    off afterwards as before."""
    import logging

    import tensorflow as tf
    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, input_signature=[tf.TensorSpec([None, 2])])
    saved = str(tmp_path / "other_model")
    tf.saved_model.save(module, saved, signatures={"serving_default": module.double})
    level = logging.getLogger("tf2onnx").level
    with pytest.raises(export_lib.ExportError,
                       match=f"tf2onnx could not convert {saved}: .*not in model network"):
        export_lib.export_onnx(saved, str(tmp_path / "out"), 17)
    assert logging.getLogger("tf2onnx").level == level
    assert not (tmp_path / "out").exists()


def test_int8_without_data_is_refused_before_any_work(tmp_path):
    """int8 calibrates on records: without --data_dir it is said at once, before the
    model is even read (this run does not exist) or any export written."""
    with pytest.raises(export_lib.ExportError, match="int8 TFLite needs --data_dir"):
        export_lib.run(str(tmp_path / "no_run"), str(tmp_path / "out"), None, ["float32", "int8"])
    assert not (tmp_path / "out").exists()
