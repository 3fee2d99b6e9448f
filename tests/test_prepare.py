"""facepars.prepare end to end: real layouts, the real CLI, bad input, resume, verify."""

import glob
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facepars import prepare
from facepars.core.classes import IGNORE_LABEL
from facepars.core.errors import PrepareError
from facepars.core.imaging import BadInput
from facepars.data import integrity, schema
from facepars.data.sources import LayoutError

import fixtures
from conftest import REPO, held_prepare, read_split, run_cli, wait_for_file

SIZE = 64


def _reference_mask(raw: np.ndarray, lut: dict) -> np.ndarray:
    """Independent remap + nearest resize (TensorFlow's, not facepars')."""
    remapped = np.vectorize(lut.get)(raw).astype(np.uint8)
    return tf.image.resize(remapped[..., None], (SIZE, SIZE), method="nearest").numpy()[..., 0]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def _reference_image(path: str) -> np.ndarray:
    raw = np.asarray(Image.open(path).convert("RGB"))
    return tf.image.resize(raw, (SIZE, SIZE), method="area", antialias=True).numpy()


@pytest.mark.slow
def test_kaggle_layout_through_the_cli(tmp_path):
    root = fixtures.write_kaggle(str(tmp_path / "kaggle"))
    out = str(tmp_path / "out")
    proc = run_cli("facepars.prepare", "--source=kaggle", f"--input_dir={tmp_path}/kaggle",
                   f"--output_dir={out}", f"--image_size={SIZE}", "--shard_size=3",
                   "--workers=2")
    assert "train: 4 records in 2 shards" in proc.stdout
    manifest = json.load(open(f"{out}/manifest.json"))
    assert manifest["class_table"]["name"] == "seed8"
    assert sorted(os.path.basename(p) for p in glob.glob(f"{out}/*.tfrecord")) == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
        "val-00000-of-00001.tfrecord"]
    seen = set()
    for split in ("train", "val"):
        records = read_split(out, split)
        assert len(records) == manifest["splits"][split]["num_records"]
        for source_id, (image, mask) in records.items():
            name = source_id.split("/")[1]
            raw = np.asarray(Image.open(f"{root}/{split}/seg/{name}.png"))
            np.testing.assert_array_equal(mask, _reference_mask(raw, fixtures.SEED_MERGE))
            assert _psnr(image, _reference_image(f"{root}/{split}/image/{name}.jpg")) > 30
            seen |= set(np.unique(mask).tolist())
    # Every class survives from raw mask to record (the notebook lost ears and glasses).
    assert seen == set(range(8))
    pixels = np.array(manifest["splits"]["train"]["class_pixels"])
    assert (pixels > 0).all() and pixels.sum() == 4 * SIZE * SIZE


@pytest.mark.slow
def test_lapa_layout_with_lapa11_and_padding(tmp_path):
    fixtures.write_lapa(str(tmp_path / "lapa"))
    out = str(tmp_path / "out")
    run_cli("facepars.prepare", "--source=lapa", f"--input_dir={tmp_path}/lapa",
            f"--output_dir={out}", f"--image_size={SIZE}", "--taxonomy=lapa11",
            "--resize=pad", "--image_format=png", "--workers=1")
    manifest = schema.Manifest.load(out)
    assert manifest.splits == ["train", "val", "test"]
    assert manifest.class_table.flip_pairs == ((2, 3), (4, 5))
    seen = set()
    for split in manifest.splits:
        for source_id, (image, mask) in read_split(out, split).items():
            raw = np.asarray(
                Image.open(f"{tmp_path}/lapa/{split}/labels/{source_id.split('/')[1]}.png")
            )
            # 260x200 portrait, padded left and right with the ignore label.
            content = mask[:, 7:57]
            assert (mask[:, :7] == IGNORE_LABEL).all() and (mask[:, 57:] == IGNORE_LABEL).all()
            ref = tf.image.resize(raw[..., None], (64, 49), method="nearest").numpy()[..., 0]
            np.testing.assert_array_equal(content[:, :49], ref)
            assert (image[:, :7] == 0).all()
            seen |= set(np.unique(content[:, :49]).tolist())
    assert seen == set(range(11))


@pytest.mark.slow
def test_celebamask_hq_layout_merges_parts_in_order_and_follows_the_partition(tmp_path):
    fixtures.write_celebamask_hq(str(tmp_path / "celeba"))
    out = str(tmp_path / "out")
    run_cli("facepars.prepare", "--source=celebamask_hq", f"--input_dir={tmp_path}/celeba",
            f"--output_dir={out}", f"--image_size={SIZE}", "--workers=1")
    manifest = schema.Manifest.load(out)
    # Partition (0,0,0,1,2) by index: 0,1,2,5 train; 3 val; 4 test.
    assert {s: manifest.num_records(s) for s in manifest.splits} == {
        "train": 4,
        "val": 1,
        "test": 1,
    }
    celeba_to_seed8 = {"skin": 1, "nose": 4, "eye_g": 7, "l_eye": 3, "r_eye": 3, "l_brow": 2,
                       "r_brow": 2, "l_ear": 6, "r_ear": 6, "mouth": 5, "u_lip": 5, "l_lip": 5}
    seen = set()
    for split in manifest.splits:
        for source_id, (_, mask) in read_split(out, split).items():
            n = int(source_id)
            merged = np.zeros((128, 128), np.uint8)
            for part in fixtures.CELEBA_PARTS:  # the published paint order
                path = f"{tmp_path}/celeba/CelebAMask-HQ-mask-anno/0/{n:05d}_{part}.png"
                if os.path.exists(path):
                    merged[np.asarray(Image.open(path)) > 0] = celeba_to_seed8.get(part, 0)
            ref = tf.image.resize(merged[..., None], (SIZE, SIZE), method="nearest").numpy()[..., 0]
            np.testing.assert_array_equal(mask, ref)
            seen |= set(np.unique(mask).tolist())
    assert seen == set(range(8))


def _config(tmp_path, **kw):
    kw.setdefault("source", "kaggle")
    kw.setdefault("input_dir", str(tmp_path / "kaggle"))
    return prepare.PrepareConfig(output_dir=str(tmp_path / "out"), image_size=32, **kw)


def _assert_nothing_half_written(tmp_path):
    out = tmp_path / "out"
    assert not (out / "manifest.json").exists()
    assert not glob.glob(str(out / "*.tfrecord"))


def _break(root, kind):
    """Damage a Kaggle fixture; returns the file name the error must mention."""
    train = f"{root}/content/All_data/train"
    if kind == "corrupt image":
        open(f"{train}/image/0002_0001.jpg", "wb").write(b"\xff\xd8garbage")
        return "0002_0001.jpg"
    if kind == "truncated image":
        data = open(f"{train}/image/0002_0001.jpg", "rb").read()
        open(f"{train}/image/0002_0001.jpg", "wb").write(data[:len(data) // 3])
        return "0002_0001.jpg"
    if kind == "empty mask":
        open(f"{train}/seg/0002_0001.png", "wb").close()
        return "0002_0001.png"
    if kind == "image without mask":
        os.remove(f"{train}/seg/0002_0001.png")
        return "0002_0001.jpg"
    if kind == "mask without image":
        os.remove(f"{train}/image/0002_0001.jpg")
        return "0002_0001.png"
    if kind == "size mismatch":
        Image.open(f"{train}/seg/0002_0001.png").resize((50, 40), Image.NEAREST).save(
            f"{train}/seg/0002_0001.png")
        return "0002_0001.png"
    if kind == "unknown id":
        mask = np.asarray(Image.open(f"{train}/seg/0002_0001.png")).copy()
        mask[:3, :3] = 42
        mask[5, 5] = 18
        Image.fromarray(mask).save(f"{train}/seg/0002_0001.png")
        return "0002_0001.png"
    raise ValueError(kind)


BAD_INPUTS = ["corrupt image", "truncated image", "empty mask", "image without mask",
              "mask without image", "size mismatch", "unknown id"]


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_pair_fails_naming_the_file_and_writes_nothing(tmp_path, kind):
    fixtures.write_kaggle(str(tmp_path / "kaggle"), size=(90, 70))
    name = _break(str(tmp_path / "kaggle"), kind)
    with pytest.raises((PrepareError, BadInput)) as info:
        prepare.run(_config(tmp_path, shard_size=1))
    assert name in str(info.value)
    if kind == "unknown id":
        assert "[18, 42]" in str(info.value)
    _assert_nothing_half_written(tmp_path)
    assert not glob.glob(str(tmp_path / "out" / "_parts" / "*.tmp"))


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_skip_mode_lists_the_bad_pair_and_converts_the_rest(tmp_path, kind):
    fixtures.write_kaggle(str(tmp_path / "kaggle"), size=(90, 70))
    name = _break(str(tmp_path / "kaggle"), kind)
    manifest = prepare.run(_config(tmp_path, on_error="skip"))
    assert len(manifest["skipped"]) == 1 and name in manifest["skipped"][0]["error"]
    assert manifest["splits"]["train"]["num_records"] == 3
    assert manifest["splits"]["val"]["num_records"] == 2


@pytest.mark.slow
def test_cli_exits_nonzero_with_the_file_name(tmp_path):
    fixtures.write_kaggle(str(tmp_path / "kaggle"), splits=(("train", 12), ("val", 2)),
                          size=(90, 70))
    _break(str(tmp_path / "kaggle"), "corrupt image")
    args = ["--source=kaggle", f"--input_dir={tmp_path}/kaggle", f"--output_dir={tmp_path}/out",
            "--workers=2", "--shard_size=1", "--seed=1"]  # seed 1: the bad pair is 9th
    proc = run_cli("facepars.prepare", *args, check=False)
    assert proc.returncode == 1
    assert "0002_0001.jpg" in proc.stderr and "corrupt" in proc.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()
    # What the message tells the user to do works, and keeps the shards already done.
    assert "rerun with --resume --on_error=skip" in proc.stderr
    done = {p: os.stat(p).st_mtime_ns for p in glob.glob(f"{tmp_path}/out/*.tfrecord")}
    assert done
    run_cli("facepars.prepare", *args, "--resume", "--on_error=skip")
    assert all(os.stat(p).st_mtime_ns == t for p, t in done.items())
    manifest = json.load(open(tmp_path / "out" / "manifest.json"))
    assert [s["source_id"] for s in manifest["skipped"]] == ["train/0002_0001"]


def test_beam_without_its_extra_is_refused_saying_what_to_install(tmp_path):
    """prepare.run with runner="beam" where Apache Beam is not installed: the
    ConfigError the command line gives, before TensorFlow loads or anything is
    written, not an ImportError from deep inside."""
    shims = [os.path.join(REPO, "tests", d) for d in ("no_beam", "no_tensorflow")]
    code = ("from facepars import prepare\n"
            "from facepars.core.errors import ConfigError\n"
            "try:\n"
            f"    prepare.run(prepare.PrepareConfig(output_dir={str(tmp_path / 'out')!r}, "
            "runner='beam'))\n"
            "except ConfigError as e:\n"
            "    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([*shims, REPO])))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == \
        "--runner=beam needs Apache Beam: pip install 'facepars[beam]'", proc.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "does not exist"),
    (lambda p: os.makedirs(p), "is empty"),
    (lambda p: os.makedirs(f"{p}/photos"), "not the Kaggle layout"),
])
def test_missing_empty_or_alien_input_dir(tmp_path, setup, message):
    setup(str(tmp_path / "kaggle"))
    with pytest.raises(LayoutError, match=message):
        prepare.run(_config(tmp_path))


def test_celebamask_without_partition_file_names_it(tmp_path):
    fixtures.write_celebamask_hq(str(tmp_path / "celeba"), count=1, mask_size=32)
    os.remove(tmp_path / "celeba" / "list_eval_partition.txt")
    with pytest.raises(LayoutError, match="list_eval_partition.txt"):
        prepare.run(_config(tmp_path, source="celebamask_hq", input_dir=str(tmp_path / "celeba")))


def test_existing_output_needs_resume_or_overwrite(tmp_path):
    cfg = prepare.PrepareConfig(output_dir=str(tmp_path / "out"), num_examples=10,
                                image_size=32, synthetic_size=48)
    prepare.run(cfg)
    with pytest.raises(PrepareError, match="--resume .* --overwrite"):
        prepare.run(cfg)
    again = prepare.run(prepare.PrepareConfig(**{**cfg.__dict__, "overwrite": True}))
    assert again["splits"]["train"]["num_records"] == 8
    with pytest.raises(PrepareError, match="image_size"):
        prepare.run(prepare.PrepareConfig(**{**cfg.__dict__, "image_size": 48, "resume": True,
                                           "overwrite": False}))


def test_carved_val_split_is_seeded_and_disjoint(tmp_path):
    fixtures.write_kaggle(str(tmp_path / "kaggle"), splits=(("train", 10),), size=(60, 50))
    first = prepare.run(_config(tmp_path, val_fraction=0.3, seed=5))
    ids = {s: set(read_split(str(tmp_path / "out"), s)) for s in ("train", "val")}
    assert len(ids["val"]) == 3 and len(ids["train"]) == 7 and not ids["train"] & ids["val"]
    second = prepare.run(_config(tmp_path, val_fraction=0.3, seed=5, overwrite=True))
    assert first["splits"] == second["splits"]


def test_non_local_output_through_gfile(tmp_path):
    out = "ram://facepars-test/out"
    manifest = prepare.run(prepare.PrepareConfig(output_dir=out, num_examples=10, image_size=32,
                                                 synthetic_size=48, shard_size=4))
    loaded, problems = integrity.verify(out)
    assert problems == [] and loaded.data == manifest
    assert len(read_split(out, "train")) == 8


def test_source_at_a_url_is_read_through_gfile(tmp_path):
    """A bucket as input (Dataflow's case), here TensorFlow's in-memory file system."""
    fixtures.write_kaggle(str(tmp_path / "kaggle"), size=(90, 70))
    url = "ram://facepars-test/kaggle"
    _to_url(tmp_path / "kaggle", url)
    from_url = prepare.run(prepare.PrepareConfig(source="kaggle", input_dir=url, image_size=32,
                                                 output_dir=str(tmp_path / "url")))
    local = prepare.run(_config(tmp_path))
    assert from_url["splits"] == local["splits"]  # record counts, class pixels, shard checksums
    with pytest.raises(LayoutError, match="does not exist"):
        prepare.run(prepare.PrepareConfig(source="kaggle", input_dir=url + "-missing",
                                          output_dir=str(tmp_path / "none")))


def _to_url(local_root, url):
    for path in glob.glob(f"{local_root}/**/*.*", recursive=True):
        target = url + path[len(str(local_root)):]
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(path, target, overwrite=True)


@pytest.mark.parametrize("source", ["kaggle", "lapa", "celebamask_hq"])
def test_listing_a_bucket_costs_calls_per_directory_not_per_file(tmp_path, monkeypatch, source):
    """The same layout with 3x the pairs costs the same file-system calls: listings
    of directories, never a stat or an open per pair."""
    from facepars.core import files
    from facepars.data import sources
    write = {"kaggle": lambda root, n: fixtures.write_kaggle(
                 root, splits=(("train", n), ("val", n)), size=(40, 30)),
             "lapa": lambda root, n: fixtures.write_lapa(
                 root, splits=(("train", n), ("val", n), ("test", n)), size=(40, 30)),
             "celebamask_hq": lambda root, n: fixtures.write_celebamask_hq(
                 root, count=2 * n, mask_size=16)}[source]
    calls = []

    class Counting:
        def __getattr__(self, name):
            def call(*args, **kwargs):
                calls.append(name)
                return getattr(tf.io.gfile, name)(*args, **kwargs)
            return call

    counts = []
    for n in (2, 6):
        write(str(tmp_path / f"{source}{n}"), n)
        url = f"ram://facepars-listing/{source}{n}"
        _to_url(tmp_path / f"{source}{n}", url)
        calls.clear()
        monkeypatch.setattr(files, "_gfile", lambda: Counting())
        pairs, bad = sources.list_source(source, url)
        monkeypatch.undo()
        assert sum(len(v) for v in pairs.values()) >= 2 * n and not bad
        counts.append(sorted(calls))
    assert counts[0] == counts[1], counts
    assert all(c in ("listdir", "isdir", "exists", "GFile") for c in counts[0])


def _prepare_args(out):
    return ["--source=synthetic", "--num_examples=48", "--synthetic_size=200",
            f"--output_dir={out}", "--image_size=64", "--shard_size=2", "--workers=1"]


@pytest.mark.slow
def test_kill_and_resume_gives_identical_shards(tmp_path):
    run_cli("facepars.prepare", *_prepare_args(tmp_path / "whole"))
    proc = subprocess.Popen([sys.executable, "-m", "facepars.prepare",
                             *_prepare_args(tmp_path / "killed")], cwd=REPO,
                            env=held_prepare(tmp_path / "held", 4),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_file(tmp_path / "held", proc)  # the job holds after its 4th shard of 24
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(glob.glob(f"{tmp_path}/killed/*.tfrecord")) == 4
    assert not os.path.exists(tmp_path / "killed" / "manifest.json")
    run_cli("facepars.prepare", *_prepare_args(tmp_path / "killed"), "--resume")
    whole = sorted(os.listdir(tmp_path / "whole"))
    assert whole == sorted(os.listdir(tmp_path / "killed"))
    for name in whole:
        if name.endswith(".tfrecord"):
            assert open(tmp_path / "whole" / name, "rb").read() == \
                open(tmp_path / "killed" / name, "rb").read(), name
    a, b = (json.load(open(tmp_path / d / "manifest.json")) for d in ("whole", "killed"))
    for key in ("splits", "class_table", "settings"):
        assert a[key] == b[key]


@pytest.mark.slow
def test_verify_catches_a_flipped_byte(tmp_path):
    out = tmp_path / "out"
    prepare.run(prepare.PrepareConfig(output_dir=str(out), num_examples=48, image_size=64,
                                      synthetic_size=96, shard_size=8, workers=1))
    ok = run_cli("facepars.verify", f"--data_dir={out}", f"--output_dir={tmp_path / 'report'}")
    assert "verify OK" in ok.stdout and (tmp_path / "report" / "class_distribution.png").exists()
    # The stamp verify leaves vouches for every shard, until one changes.
    from facepars.data import integrity, schema
    manifest = schema.Manifest.load(str(out))
    assert integrity.check_present(manifest, manifest.splits) == ([], [])
    shard = out / "train-00002-of-00005.tfrecord"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40
    shard.write_bytes(bytes(data))
    problems, unvouched = integrity.check_present(manifest, manifest.splits)
    assert problems == [] and [s.path for s in unvouched] == [str(shard)]
    shard.write_bytes(bytes(data[:-10]))  # truncated: named by size, no reading
    problems, _ = integrity.check_present(manifest, manifest.splits)
    assert problems and "train-00002-of-00005.tfrecord" in problems[0] and "bytes" in problems[0]
    shard.write_bytes(bytes(data))
    bad = run_cli("facepars.verify", f"--data_dir={out}", check=False)
    assert bad.returncode == 1
    assert "train-00002-of-00005.tfrecord: checksum" in bad.stderr
    assert "train-00002-of-00005.tfrecord record " in bad.stderr


def test_num_shards_sets_a_minimum_of_balanced_files(tmp_path):
    """--num_shards=5 over 16 train records with a large shard_size: 5 files of 3-4
    records, every record once (what lets 5 hosts read whole files each)."""
    from facepars.data import schema
    out = str(tmp_path / "out")
    prepare.run(prepare.PrepareConfig(output_dir=out, num_examples=20, image_size=32,
                                      synthetic_size=48, shard_size=512, num_shards=5))
    manifest = schema.Manifest.load(out)
    train = manifest.shards("train")
    assert len(train) == 5 and {s.num_records for s in train} == {3, 4}
    assert sum(s.num_records for s in train) == manifest.num_records("train") == 16
    assert len(manifest.shards("val")) == 2  # only 2 records: no empty files


def test_a_manifest_of_another_format_is_refused_with_what_to_do(tmp_path):
    from facepars.data import schema
    out = str(tmp_path / "out")
    prepare.run(prepare.PrepareConfig(output_dir=out, num_examples=4, image_size=32,
                                      synthetic_size=48))
    assert schema.Manifest.load(out).shards("train")[0].bytes > 0
    path = os.path.join(out, "manifest.json")
    manifest = json.load(open(path))
    manifest["format_version"] = 1  # before shard sizes were recorded
    json.dump(manifest, open(path, "w"))
    with pytest.raises(schema.ManifestError, match="format 1, this facepars reads 2; prepare "
                                                   "the data again"):
        schema.Manifest.load(out)


def test_celebamask_hq_with_taxonomy_source_keeps_the_painters_19_classes(tmp_path):
    """--taxonomy=source: background and the 18 parts in the published paint order,
    one to one (a part painted later wins), left/right flip pairs recorded."""
    fixtures.write_celebamask_hq(str(tmp_path / "celeba"))
    for hair in glob.glob(f"{tmp_path}/celeba/CelebAMask-HQ-mask-anno/0/*_hair.png"):
        overlap = np.asarray(Image.open(hair)).copy()
        overlap[30:90, 30:90] = 255  # hair over the face: painted after skin, nose, eyes
        Image.fromarray(overlap).save(hair)
    manifest = prepare.run(_config(tmp_path, source="celebamask_hq",
                                   input_dir=str(tmp_path / "celeba"), taxonomy="source"))
    table = schema.Manifest.load(str(tmp_path / "out")).class_table
    assert table.names == ("background", *fixtures.CELEBA_PARTS)
    pairs = {(table.names[a], table.names[b]) for a, b in table.flip_pairs}
    assert pairs == {("l_brow", "r_brow"), ("l_eye", "r_eye"), ("l_ear", "r_ear")}
    assert table.face_classes == tuple(range(1, 19))
    seen = set()
    for split in manifest["splits"]:
        for source_id, (_, mask) in read_split(str(tmp_path / "out"), split).items():
            painted = np.zeros((128, 128), np.uint8)
            anno = f"{tmp_path}/celeba/CelebAMask-HQ-mask-anno/0"
            for i, part in enumerate(fixtures.CELEBA_PARTS):
                path = f"{anno}/{int(source_id):05d}_{part}.png"
                if os.path.exists(path):
                    painted[np.asarray(Image.open(path)) > 0] = i + 1
            ref = tf.image.resize(painted[..., None], (32, 32), method="nearest").numpy()[..., 0]
            np.testing.assert_array_equal(mask, ref)
            seen |= set(np.unique(mask).tolist())
    assert seen == set(range(19))


@pytest.mark.slow
def test_a_cvat_export_gives_labelmaps_ids_and_names_through_the_cli(tmp_path):
    """CVAT's Segmentation mask 1.1: RGB colour masks decoded by labelmap.txt, ids in
    its order, its names and colours the class table; default.txt is train with val
    carved from it."""
    truth = fixtures.write_cvat(str(tmp_path / "cvat"), count=10)
    out = str(tmp_path / "out")
    proc = run_cli("facepars.prepare", "--source=voc", f"--input_dir={tmp_path}/cvat",
                   f"--output_dir={out}", f"--image_size={SIZE}", "--taxonomy=source",
                   "--workers=1")
    assert "carving 10% of train into val" in proc.stderr
    manifest = schema.Manifest.load(out)
    table = manifest.class_table
    assert table.names == tuple(n for n, _ in fixtures.CVAT_CLASSES)
    assert table.colors == tuple(c for _, c in fixtures.CVAT_CLASSES)
    assert {s: manifest.num_records(s) for s in manifest.splits} == {"train": 9, "val": 1}
    seen = set()
    for split in manifest.splits:
        for source_id, (_, mask) in read_split(out, split).items():
            raw = truth[source_id.split("/")[1]]
            ref = tf.image.resize(raw[..., None], (SIZE, SIZE), method="nearest").numpy()[..., 0]
            np.testing.assert_array_equal(mask, ref)
            seen |= set(np.unique(mask).tolist())
    assert seen == set(range(len(fixtures.CVAT_CLASSES)))


def test_a_colour_the_labelmap_lacks_is_named_or_listed(tmp_path):
    fixtures.write_cvat(str(tmp_path / "cvat"), count=4)
    path = tmp_path / "cvat" / "SegmentationClass" / "frame_000002.png"
    pixels = np.asarray(Image.open(path)).copy()
    pixels[:3, :5] = (1, 2, 3)
    Image.fromarray(pixels).save(path)
    cfg = dict(source="voc", input_dir=str(tmp_path / "cvat"), taxonomy="source")
    with pytest.raises(PrepareError, match=r"frame_000002.png: colour \(1, 2, 3\) at 15 pixels"
                                           r"[^;]*: not in .*labelmap.txt"):
        prepare.run(_config(tmp_path, **cfg))
    _assert_nothing_half_written(tmp_path)
    manifest = prepare.run(_config(tmp_path, on_error="skip", overwrite=True, **cfg))
    assert [s["source_id"] for s in manifest["skipped"]] == ["train/frame_000002"]
    assert "colour (1, 2, 3)" in manifest["skipped"][0]["error"]


def _folder(root, class_rows: str, masks_as="ids"):
    """images/ and masks/ under train/ and val/, masks holding the ids (or colours) of
    fixtures.CVAT_CLASSES's classes as a class file numbers them (id 10 * position)."""
    palette = np.array([c for _, c in fixtures.CVAT_CLASSES], np.uint8)
    truth = {}
    for split, count in (("train", 4), ("val", 2)):
        for n in range(count):
            image, mask = fixtures.face(n + 10 * len(split), 90, 70)
            ids = fixtures.cvat_ids(mask)
            os.makedirs(f"{root}/{split}/images", exist_ok=True)
            os.makedirs(f"{root}/{split}/masks", exist_ok=True)
            Image.fromarray(image).save(f"{root}/{split}/images/p{n}.png")
            coded = palette[ids] if masks_as == "colors" else (ids * 10).astype(np.uint8)
            Image.fromarray(coded).save(f"{root}/{split}/masks/p{n}.png")
            truth[f"{split}/p{n}"] = ids
    with open(f"{root}/classes.csv", "w") as f:
        f.write(class_rows)
    return truth


FOLDER_CLASSES = "name,id,part,flip\n" + "".join(
    f"{name},{10 * i},{part},{flip}\n" for i, (name, part, flip) in enumerate(
        [("background", "", ""), ("face skin", "skin", ""), ("brow", "l_brow", ""),
         ("eye", "l_eye", ""), ("snout", "nose", ""), ("lips", "u_lip", ""), ("ear", "", ""),
         ("specs", "glasses", ""), ("locks", "hair", "")]))


def test_a_folder_of_id_masks_with_a_class_file(tmp_path):
    """Non-contiguous ids (0, 10, ... 80) become ids 0..8 in the class file's order;
    parts let a built-in taxonomy take the same data."""
    truth = _folder(tmp_path / "own", FOLDER_CLASSES)
    cfg = dict(source="folder", input_dir=str(tmp_path / "own"),
               classes=str(tmp_path / "own" / "classes.csv"))
    manifest = prepare.run(_config(tmp_path, taxonomy="source", **cfg))
    assert [c["name"] for c in manifest["class_table"]["classes"]][1:3] == ["face skin", "brow"]
    for split in ("train", "val"):
        for source_id, (_, mask) in read_split(str(tmp_path / "out"), split).items():
            ref = tf.image.resize(truth[source_id][..., None], (32, 32),
                                  method="nearest").numpy()[..., 0]
            np.testing.assert_array_equal(mask, ref)
    with pytest.raises(PrepareError, match=r"classes \['ear'\] map onto no facepars part"):
        prepare.run(_config(tmp_path, taxonomy="seed8", overwrite=True, **cfg))


@pytest.mark.parametrize("rows,message", [
    ("name,id\nskin,1\nbackground,0\n", r"classes.csv:2: the first class must be 'background'"),
    ("name,id\nbackground,0\nskin,0\n", r"classes.csv:3: id 0 is given to two classes"),
    ("name,id,color\nbackground,0,#000000\nskin,1,#zz0000\n",
     r"classes.csv:3: colour '#zz0000' is not #rrggbb"),
    ("name,id,part\nbackground,0,\nskin,1,cheek\n", r"classes.csv:3: part 'cheek' is not one"),
    ("label,id\nbackground,0\n", r"classes.csv:1: the header must name the columns"),
])
def test_a_class_file_that_does_not_parse_names_the_line(tmp_path, rows, message):
    _folder(tmp_path / "own", rows)
    with pytest.raises(PrepareError, match=message):
        prepare.run(_config(tmp_path, source="folder", input_dir=str(tmp_path / "own"),
                            classes=str(tmp_path / "own" / "classes.csv"), taxonomy="source"))


def test_a_folder_value_the_class_file_lacks_and_a_lone_mask_are_named(tmp_path):
    _folder(tmp_path / "own", FOLDER_CLASSES.replace("locks,80,hair,\n", ""))
    os.remove(tmp_path / "own" / "val" / "images" / "p1.png")
    cfg = dict(source="folder", input_dir=str(tmp_path / "own"), taxonomy="source",
               classes=str(tmp_path / "own" / "classes.csv"))
    with pytest.raises(PrepareError, match=r"val/masks/p1.png: mask without image"):
        prepare.run(_config(tmp_path, **cfg))
    manifest = prepare.run(_config(tmp_path, on_error="skip", overwrite=True, **cfg))
    errors = [s["error"] for s in manifest["skipped"]]
    assert any("p1.png: mask without image" in e for e in errors)
    assert any(re.search(r"masks/p\d.png: value 80 at \d+ pixels: not in .*classes.csv", e)
               for e in errors), errors


def test_voc_palette_masks_without_labelmap_take_vocs_classes_and_ignore_boundaries(tmp_path):
    """VOC's own layout: palette PNGs whose index is the class, 255 a boundary."""
    root = tmp_path / "voc"
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(root / d)
    index = np.zeros((40, 40), np.uint8)
    index[5:20, 5:20], index[20:35, 20:35], index[19:21, :] = 15, 12, 255  # person, dog
    palette = [0] * 768
    for i, rgb in {1: (128, 0, 0), 12: (64, 0, 128), 15: (192, 128, 128),
                   255: (224, 224, 192)}.items():
        palette[3 * i:3 * i + 3] = rgb
    for name, split in (("2007_000001", "train"), ("2007_000002", "val")):
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        mask = Image.fromarray(index, "P")
        mask.putpalette(palette)
        mask.save(root / "SegmentationClass" / f"{name}.png")
        with open(root / "ImageSets" / "Segmentation" / f"{split}.txt", "w") as f:
            f.write(name + "\n")
    prepare.run(prepare.PrepareConfig(output_dir=str(tmp_path / "out"), source="voc",
                                      input_dir=str(root), taxonomy="source", image_size=40))
    table = schema.Manifest.load(str(tmp_path / "out")).class_table
    assert table.num_classes == 21 and table.names[15] == "person"
    assert table.colors[15] == (192, 128, 128) and table.colors[12] == (64, 0, 128)
    (_, mask), = read_split(str(tmp_path / "out"), "val").values()
    expected = index.copy()
    np.testing.assert_array_equal(mask, expected)  # 255 stays the ignore label
    assert IGNORE_LABEL == 255
