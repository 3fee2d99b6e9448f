"""Starting from a model: what --init_from copies, what it leaves fresh, what it refuses;
and the frozen backbone, under the strategies and precisions training runs in."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from facepars.configs import smoke
from facepars.configs.common import NO_AUGMENTATION
from facepars.core.classes import SOURCE_TABLES, TAXONOMIES, ClassTable
from facepars.core.errors import ConfigError
from facepars.data import synthetic
from facepars.models import build_model, load_model, modules
from facepars.training import initialization, task

import fixtures
from conftest import TINY

SMOKE = smoke.get_config()
# A table sharing some classes with seed8 (the trained run's), adding one, dropping two.
NEW = ClassTable("new", ("background", "skin", "hair", "nose", "mouth", "eyes"),
                 ((0, 0, 0),) + tuple((40 * i, 100, 200) for i in range(1, 6)), (1, 2, 3, 4, 5))


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _fresh(table: ClassTable, seed: int = 7, model: str = SMOKE.model, width=SMOKE.width):
    keras.utils.set_random_seed(seed)  # what train does before building
    return build_model(model, table.num_classes, 64, width=width)


def _layers(network, names):
    return {l.name: [w.numpy() for w in l.weights] for l in network.layers if l.name in names}


def test_init_copies_the_backbone_and_the_shared_rows_exactly_and_leaves_new_rows_fresh(
        trained_run):
    source = load_model(os.path.join(trained_run, "best.keras"))
    old = TAXONOMIES["seed8"].table
    network = _fresh(NEW)
    carried = initialization.initialize(network, SMOKE.model, SMOKE.width, NEW, trained_run,
                                        ("backbone", "classifier"))
    parts = {m: [l.name for l in ls] for m, ls in modules(network, SMOKE.model).items()}
    # Backbone: every weight (BatchNorm statistics included) the trained run's.
    want, got = _layers(source, parts["backbone"]), _layers(network, parts["backbone"])
    assert want.keys() == got.keys() and len(want) > 10
    for name in want:
        for a, b in zip(want[name], got[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # Decoder: not selected, so as a fresh run draws it.
    fresh = _fresh(NEW)
    for name, values in _layers(network, parts["decoder"]).items():
        for a, b in zip(values, _layers(fresh, [name])[name]):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # Classifier: shared classes' columns from the trained run (by name, at their new
    # positions), hair's from the fresh draw.
    for name in parts["classifier"]:
        old_w, new_w, fresh_w = source.get_layer(name), network.get_layer(name), \
            fresh.get_layer(name)
        for o, n, f in zip(old_w.get_weights(), new_w.get_weights(), fresh_w.get_weights()):
            for i, cls in enumerate(NEW.names):
                expected = o[..., old.names.index(cls)] if cls in old.names else f[..., i]
                np.testing.assert_array_equal(n[..., i], expected, err_msg=f"{name} {cls}")
    assert carried.classes_copied == ("background", "skin", "nose", "mouth", "eyes")
    assert carried.classes_new == ("hair",)
    assert carried.classes_dropped == ("eyebrows", "ears", "glasses")
    assert carried.layers == len(parts["backbone"]) + len(parts["classifier"])


def test_init_refuses_another_family_or_width_and_a_saved_model(trained_run, tmp_path):
    with pytest.raises(ConfigError, match="is lraspp_mobilenetv3 at width 0.5; this run "
                                          "trains pspnet_resnet50 at width 0.5"):
        initialization.initialize(_fresh(NEW, model="pspnet_resnet50"), "pspnet_resnet50", 0.5,
                                  NEW, trained_run, ("backbone",))
    with pytest.raises(ConfigError, match="at width 0.5; this run trains lraspp_mobilenetv3 at "
                                          "width 0.25"):
        initialization.initialize(_fresh(NEW, width=0.25), SMOKE.model, 0.25, NEW, trained_run,
                                  ("backbone",))
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ConfigError, match="exported SavedModel"):
        initialization.load_source(str(tmp_path))
    with pytest.raises(ConfigError, match="--init_modules='head'"):
        initialization.parse_modules("head")
    assert initialization.parse_modules("decoder,backbone") == ("backbone", "decoder")


def _batch(count=4):
    lut, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES["seed8"])
    pairs = [synthetic.render(5, i, 32, 32) for i in range(count)]
    return {"image": tf.constant(np.stack([p[0] for p in pairs])),
            "mask": tf.constant(np.stack([lut[p[1]] for p in pairs]))}


@pytest.mark.slow
@pytest.mark.parametrize("strategy,precision", [
    ("mirrored", "mixed_float16"),     # two replicas, a LossScaleOptimizer
    ("one_device", "mixed_bfloat16"),  # a TPU's precision
])
def test_the_backbone_holds_still_for_the_frozen_steps_then_trains(strategy, precision):
    """Two steps frozen: the backbone's weights do not move (momentum and EMA on),
    the rest does; the third step moves the backbone too. (The gate compiles under
    XLA with every model: tests/training/test_task.py's HLO check builds it into the step.)
    The tiny family: the gate is the step's, the split into modules the family's
    contract (tests/models/test_models.py)."""
    keras.mixed_precision.set_global_policy(precision)
    # Mirrored: reduced on one device, not by collectives, whose instance keys a second
    # strategy in this process (tests/training/test_losses.py's) would collide with.
    strategy = (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"],
                                               tf.distribute.ReductionToOneDevice())
                if strategy == "mirrored" else tf.distribute.OneDeviceStrategy("/cpu:0"))
    table = TAXONOMIES["seed8"].table
    with strategy.scope():
        network = build_model(TINY, table.num_classes, 32, width=0.25)
        frozen = initialization.frozen_mask(network, TINY)
        parser = task.FaceParser(network, table, SMOKE.loss, NO_AUGMENTATION, frozen=frozen,
                                 frozen_steps=2)
        optimizer = keras.optimizers.SGD(0.05, momentum=0.9, use_ema=True, ema_momentum=0.9)
        if precision == "mixed_float16":  # a scale that overflows no step (a skipped step
            # would count as frozen)
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=16.0)
        parser.compile(optimizer=optimizer, jit_compile=False)
        parser(tf.zeros((1, 32, 32, 3)))
        parser.optimizer.build(network.trainable_variables)
    assert 0 < sum(frozen) < len(frozen)
    iterator = iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(_batch()).repeat()))
    parser.make_train_function()

    def weights():
        return [v.numpy().copy() for v in network.trainable_variables]

    before = weights()
    for _ in range(2):
        parser.train_function(iterator)
    after = weights()
    moved = [not np.array_equal(a, b) for a, b in zip(before, after)]
    assert not any(m for m, f in zip(moved, frozen) if f), "a frozen variable moved"
    assert any(m for m, f in zip(moved, frozen) if not f), "nothing else trained"
    parser.train_function(iterator)
    assert int(parser.optimizer.iterations.numpy()) == 3  # no step skipped
    thawed = [not np.array_equal(a, b) for a, b in zip(after, weights())]
    assert sum(t for t, f in zip(thawed, frozen) if f) > sum(frozen) // 2


@pytest.mark.slow
def test_a_whole_run_on_a_cvat_export_with_its_own_class_names(tiny_run, tmp_path):
    """A CVAT export (names no built-in table has) through every command: prepare
    --source=voc --taxonomy=source (its command line: tests/test_prepare.py), train
    --init_from the seed8 run, evaluate, predict, export; each output speaks the
    export's class names. The network is a family of the user's own
    (tests/tiny_family.py, by its import path), which every command takes as well."""
    from facepars import prepare

    from conftest import run_cli
    fixtures.write_cvat(str(tmp_path / "cvat"), count=24, size=(96, 80))
    data, run = str(tmp_path / "data"), str(tmp_path / "run")
    prepare.run(prepare.PrepareConfig(output_dir=data, source="voc", taxonomy="source",
                                      input_dir=str(tmp_path / "cvat"), image_size=64))
    names = [n for n, _ in fixtures.CVAT_CLASSES]
    proc = run_cli("facepars.train", "--config=smoke", f"--config.model={TINY}",
                   f"--data_dir={data}", f"--model_dir={run}", "--config.epochs=1",
                   "--config.steps_per_epoch=3", "--config.batch_size=4",
                   "--config.overlay_images=2", "--config.freeze_backbone_steps=2",
                   f"--init_from={tiny_run}", "--init_modules=all")
    assert "initialised from" in proc.stderr and "new ['face skin', 'brow'" in proc.stderr
    info = json.load(open(f"{run}/config.json"))
    assert [c["name"] for c in info["class_table"]["classes"]] == names
    assert info["init_from"]["source"] == tiny_run and info["model"] == TINY
    assert info["init_from"]["classes_copied"] == ["background"]
    assert info["init_from"]["classes_dropped"] == list(TAXONOMIES["seed8"].table.names[1:])

    proc = run_cli("facepars.evaluate", f"--model_path={run}", f"--data_dir={data}",
                   "--split=val", f"--output_dir={run}/eval")
    assert "mean F1 as published (FaRL, SegFace: the 8 classes but background" in proc.stdout
    report = json.load(open(f"{run}/eval/val_report.json"))
    assert set(report["network_resolution"]["pixels"]) == set(names)
    run_cli("facepars.predict", f"--model_path={run}", f"--output_dir={tmp_path}/parsed",
            "--faces=whole", f"{tmp_path}/cvat/JPEGImages/frame_000000.jpg")
    summary = json.load(open(f"{tmp_path}/parsed/summary.json"))
    assert set(json.dumps(summary).split('"')) >= {"face skin", "snout", "locks"}
    run_cli("facepars.export", f"--model_path={run}", f"--output_dir={run}/export",
            "--tflite=")  # TFLite from any table: tests/test_export.py
    exported = json.load(open(f"{run}/export/class_table.json"))
    assert [c["name"] for c in exported["class_table"]["classes"]] == names
