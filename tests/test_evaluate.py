import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from facepars import evaluate_lib
from facepars.core.classes import IGNORE_LABEL
from facepars.data import schema, sources, synthetic
from facepars.faces import detection
from facepars.inference.predictor import Predictor
from facepars.models import load_model
from facepars.models.rundir import ModelCard

import fixtures
from conftest import read_split, run_cli


def _direct_confusion(model_dir, data_dir, split):
    model = load_model(os.path.join(model_dir, "best.keras"))
    records = read_split(data_dir, split)
    imgs = np.stack([r[0] for r in records.values()]).astype(np.float32) / 255.0
    masks = np.stack([r[1] for r in records.values()])
    predicted = np.argmax(model(imgs, training=False), -1)
    keep = masks != IGNORE_LABEL
    return confusion_matrix(masks[keep], predicted[keep], labels=range(8))


@pytest.mark.parametrize("strategy", ["one_device", "mirrored"])
def test_evaluate_equals_metrics_computed_from_the_predictions(tiny_run, synthetic_data,
                                                              tmp_path, strategy):
    result = evaluate_lib.run(tiny_run, synthetic_data, "val", str(tmp_path), batch_size=6,
                              strategy_name=strategy)
    expected = _direct_confusion(tiny_run, synthetic_data, "val")
    np.testing.assert_array_equal(result["network_resolution"]["confusion"], expected)
    report = json.load(open(tmp_path / "val_report.json"))
    assert report["records"] == 8
    assert (tmp_path / "val_confusion.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_evaluate_cli_at_original_resolution(tiny_run, synthetic_data, tmp_path):
    out = run_cli(
        "facepars.evaluate",
        f"--model_path={tiny_run}",
        f"--data_dir={synthetic_data}",
        "--split=val",
        f"--output_dir={tmp_path}",
        "--original_resolution",
        "--strategy=one_device",
    )
    assert "at original resolution" in out.stdout and "mean (face)" in out.stdout
    report = json.load(open(tmp_path / "val_report.json"))
    net = report["network_resolution"]["scores"]["pixel_accuracy"]
    orig = report["original_resolution"]["scores"]["pixel_accuracy"]
    assert abs(net - orig) < 0.05
    assert (tmp_path / "val_confusion_original.png").exists()


def test_original_resolution_reports_both_protocols_with_the_detectors_recall(
        tiny_run, synthetic_data):
    """A stand-in detector that finds every other face (at its exact points) and
    misses the rest: the recall is that fraction, every pixel is counted in both
    protocols, and a missed face's pixels are all predicted background."""
    manifest = schema.Manifest.load(synthetic_data)
    listing, _ = sources.list_source(input_dir=None, **manifest.source_listing)
    known, missed_pixels = {}, 0
    for i, pair in enumerate(listing["val"]):
        image, _, points = synthetic.render_with_landmarks(pair.seed, pair.index, pair.height,
                                                           pair.width)
        known[hashlib.sha1(image.tobytes()).hexdigest()] = points if i % 2 == 0 else None
        missed_pixels += image.shape[0] * image.shape[1] * (i % 2)

    def detector(photo):
        points = known[hashlib.sha1(photo.tobytes()).hexdigest()]
        return [] if points is None else [detection.from_landmarks(points)]

    predictor = Predictor.load(tiny_run)
    found = evaluate_lib.original_resolution(predictor, manifest, "val", None, detector)
    assert found["recall"] == pytest.approx(sum(v is not None for v in known.values()) / len(known))
    assert found["detector"].sum() == found["oracle"].sum()
    # --min_score and --min_face reach the detector protocol: faces it finds below
    # either are missed.
    for min_score, min_face in ((1.01, 20.0), (0.5, 1e4)):
        strict = evaluate_lib.original_resolution(predictor, manifest, "val", None, detector,
                                                  keep=detection.FaceFilter(min_score, min_face))
        assert strict["recall"] == 0 and strict["detector"][:, 1:].sum() == 0
    assert found["detector"][:, 0].sum() >= missed_pixels


def _stripes(x):
    """A parser whose labels show the framing: eight stripes across the crop."""
    import tensorflow as tf
    column = tf.range(tf.shape(x)[2]) * 8 // tf.shape(x)[2]
    logits = tf.one_hot(column, 8)[None, None]
    return tf.tile(logits, [tf.shape(x)[0], tf.shape(x)[1], 1, 1])


def test_data_aligned_by_the_detector_is_scored_aligned_as_prepared(tiny_run, tmp_path):
    """``--align=detect`` data is framed as prepare framed it (the largest face the
    detector finds), like ``--align=landmarks`` data: with a detector that finds
    the exact points the two give the same oracle scores. Before, detect-aligned
    data was squashed whole into the network and still reported as framed."""
    import shutil

    from facepars import prepare
    data = str(tmp_path / "landmarks")
    prepare.run(prepare.PrepareConfig(output_dir=data, num_examples=20, image_size=64,
                                      synthetic_size=96, align="landmarks"))
    detected = str(tmp_path / "detect")
    shutil.copytree(data, detected)
    manifest_path = os.path.join(detected, "manifest.json")
    manifest = json.load(open(manifest_path))
    manifest["framing"]["mode"] = "detect"
    json.dump(manifest, open(manifest_path, "w"))

    def detector(photo):  # exact points, found by the drawing's hash
        return [detection.from_landmarks(points[hashlib.sha1(photo.tobytes()).hexdigest()])]

    listing, _ = sources.list_source(input_dir=None, **manifest["source_listing"])
    points = {}
    for pair in listing["val"]:
        image, _, five = synthetic.render_with_landmarks(pair.seed, pair.index, pair.height,
                                                         pair.width)
        points[hashlib.sha1(image.tobytes()).hexdigest()] = five
    card = dataclasses.replace(Predictor.load(tiny_run).card, framing=manifest["framing"])
    predictor = Predictor(_stripes, card)
    results = [evaluate_lib.original_resolution(predictor, schema.Manifest.load(d), "val", None,
                                                detector)["oracle"] for d in (data, detected)]
    np.testing.assert_array_equal(results[0], results[1])


def test_original_resolution_reads_the_raw_data_the_manifest_names(tmp_path):
    """Without --input_dir, the photos are read from where prepare read them: every
    val mask pixel is scored."""
    import tensorflow as tf

    from facepars import prepare
    from facepars.core.classes import TAXONOMIES
    fixtures.write_kaggle(str(tmp_path / "kaggle"), size=(40, 30))
    data = str(tmp_path / "data")
    prepare.run(prepare.PrepareConfig(source="kaggle", input_dir=str(tmp_path / "kaggle"),
                                      output_dir=data, image_size=32))
    card = ModelCard(TAXONOMIES["seed8"].table, 32, "stretch")
    skin = Predictor(lambda x: tf.one_hot(tf.ones(tf.shape(x)[:3], tf.int32), 8), card)
    manifest = schema.Manifest.load(data)
    found = evaluate_lib.original_resolution(skin, manifest, "val", None)
    assert found["oracle"].sum() == manifest.num_records("val") * 40 * 30


def test_celebamask_hq_half_size_masks_score_faces_framed_at_the_masks_size(tiny_run,
                                                                          tmp_path):
    """CelebAMask-HQ's masks are half its photos' size. Data aligned by the detector is
    scored at the mask's size, on the five points found on the whole photo moved to
    it: both protocols equal confusions computed here from the exact points, scaled
    by hand about pixel edges (``at``; facepars's own ``alignment.rescale`` is what is
    under test), on a photo of the mask's size (the stripes show where each crop was)."""
    from PIL import Image
    from sklearn.metrics import confusion_matrix

    from facepars import prepare
    fixtures.write_celebamask_hq(str(tmp_path / "celeba"), count=10, mask_size=64)
    data = str(tmp_path / "data")
    prepare.run(prepare.PrepareConfig(source="celebamask_hq", image_size=64, output_dir=data,
                                      input_dir=str(tmp_path / "celeba")))
    framing = dict(Predictor.load(tiny_run).card.framing, mode="detect")
    manifest_path = os.path.join(data, "manifest.json")
    written = json.load(open(manifest_path))
    json.dump(dict(written, framing=framing), open(manifest_path, "w"))  # as --align=detect
    manifest = schema.Manifest.load(data)

    faces = {n: fixtures.face_with_landmarks(n, 128, 128) for n in range(10)}
    thumbs = {n: np.asarray(Image.fromarray(f[0]).resize((16, 16)), np.float32)
              for n, f in faces.items()}

    def which(photo):
        thumb = np.asarray(Image.fromarray(photo).resize((16, 16)), np.float32)
        return min(thumbs, key=lambda n: np.abs(thumbs[n] - thumb).mean())

    def at(points, width):  # at another image width: pixel edges scale, centres are whole
        return (points + 0.5) * width / 128 - 0.5

    def detector(photo):  # the exact points, at the size of the photo it is given
        return [detection.from_landmarks(at(faces[which(photo)][2], photo.shape[1]))]

    predictor = Predictor(_stripes, dataclasses.replace(Predictor.load(tiny_run).card,
                                                      framing=framing))
    found = evaluate_lib.original_resolution(predictor, manifest, "val", None, detector)

    listing, _ = sources.list_source(input_dir=manifest.input_dir, **manifest.source_listing)
    expected = np.zeros((8, 8), np.int64)
    for pair in listing["val"]:
        _, raw = pair.load()
        assert raw.shape == (64, 64)
        truth = manifest.source_lookup[raw]
        labels = predictor.predict_faces(np.zeros((64, 64, 3), np.uint8), [
            detection.from_landmarks(at(faces[int(pair.source_id)][2], 64))]).labels
        keep = truth != IGNORE_LABEL
        expected += confusion_matrix(truth[keep], labels[keep], labels=range(8))
    assert len(listing["val"]) == 2 and expected[:, 1:].sum() > 0
    np.testing.assert_array_equal(found["oracle"], expected)
    np.testing.assert_array_equal(found["detector"], expected)
    assert found["recall"] == 1.0
