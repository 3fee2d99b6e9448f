"""The train and test steps as an accelerator sees them: XLA, mixed precision, the optimizer."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from facepars.configs import smoke
from facepars.configs.common import AugmentConfig
from facepars.core import internals
from facepars.core.classes import SOURCE_TABLES, TAXONOMIES
from facepars.data import synthetic
from facepars.models import MODELS, build_model
from facepars.training import initialization, task

from conftest import TINY

TABLE = TAXONOMIES["seed8"].table
SIZE = 64
# The one float64 XLA's own lowering of a bilinear resize writes: a scalar constant
# converted at compile time (folded away before anything runs).
FOLDED_F64 = re.compile(r"= f64\[\] constant\(|= \w+\[\] convert\(f64\[\] ")


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _batch(count=4):
    lut, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES["seed8"])
    pairs = [synthetic.render(5, i, SIZE, SIZE) for i in range(count)]
    return {"image": tf.constant(np.stack([p[0] for p in pairs])),
            "mask": tf.constant(np.stack([lut[p[1]] for p in pairs]))}


def _parser(model="lraspp_mobilenetv3", precision="float32", augment=AugmentConfig(),
            weights=None, frozen_steps=0, **compile_args):
    keras.mixed_precision.set_global_policy(precision)
    network = build_model(model, TABLE.num_classes, SIZE, width=0.25)
    if weights is not None:
        network.set_weights(weights)
    frozen = initialization.frozen_mask(network, model) if frozen_steps else None
    parser = task.FaceParser(network, TABLE, smoke.get_config().loss, augment, seed=3,
                             frozen=frozen, frozen_steps=frozen_steps)
    parser.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, use_ema=True,
                                                  ema_momentum=0.9), **compile_args)
    parser(tf.zeros((1, SIZE, SIZE, 3)))
    parser.optimizer.build(network.trainable_variables)
    return parser


@pytest.mark.slow
@pytest.mark.parametrize("model,precision", [(model, "mixed_bfloat16") for model in MODELS]
                         + [("lraspp_mobilenetv3", "float32")])
def test_steps_compile_for_the_device_alone(model, precision):
    """Train and test step, every default augmentation on, lowered by XLA: any op
    without an XLA kernel fails the lowering; the HLO holds no float64 value, no
    host transfer and no custom call (what a TPU would bounce to the host).

    Every model in bfloat16, a TPU's precision: its graph holds every op of the
    float32 one plus the casts. float32 once, for the float64 check. With the
    backbone's freeze gate of a fine-tune (``freeze_backbone_steps``) in the step."""
    parser = _parser(model, precision, frozen_steps=1)
    batch = _batch()
    for step in (parser.train_step, parser.test_step):
        hlo = tf.function(step, jit_compile=True).experimental_get_compiler_ir(batch)(stage="hlo")
        f64 = [line for line in hlo.splitlines() if "f64" in line and not FOLDED_F64.search(line)]
        assert not f64, f64[:3]
        for marker in ("custom-call", "is_host_transfer", "infeed", "outfeed", " send(", " recv("):
            assert marker not in hlo, (step.__name__, marker)
        if precision == "mixed_bfloat16":
            assert "bf16[" in hlo  # the network really runs in bfloat16


def _flat(variables):
    return np.concatenate([np.ravel(keras.ops.convert_to_numpy(v)) for v in variables])


@pytest.mark.slow
def test_fit_with_xla_and_several_steps_per_execution_trains_like_float32_without():
    """Keras fit with jit_compile and steps_per_execution=2, full augmentation and EMA,
    in float32 and mixed_bfloat16, against float32 without XLA from the same weights
    and data. A step that compiled to something else (a skipped update, other
    random draws, a lost EMA update) moves the weights elsewhere. The tiny family
    (tests/tiny_family.py): what is compared is the step's, and each registered
    family's step compiles in the test above; MobileNetV3 took 71 CPU-s here, most
    of it XLA compiling, the tiny family 20.

    Measured, initial weights from seeds 0-4: float32 + XLA has cosine and length
    ratio 1.0000 to four places; bfloat16 has cosine 0.9988-0.9999 and
    0.996-1.004x the length of float32's update. The weights are seeded so the
    suite's order cannot move them.
    """
    keras.utils.set_random_seed(0)
    network = build_model(TINY, TABLE.num_classes, SIZE, width=0.25)
    start, start_flat = network.get_weights(), _flat(network.trainable_weights)
    data = tf.data.Dataset.from_tensors(_batch()).repeat()
    updates = {}
    for precision, jit in (("float32", False), ("float32", True), ("mixed_bfloat16", True)):
        parser = _parser(TINY, precision, weights=start, jit_compile=jit, steps_per_execution=2)
        parser.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # one execution of 2 steps
        assert int(parser.optimizer.iterations.numpy()) == 2
        updates[precision, jit] = (_flat(parser.network.trainable_weights) - start_flat,
                                   _flat(internals.ema_variables(parser.optimizer))
                                   - start_flat)
    reference = updates["float32", False]
    for key, bounds in ((("float32", True), (0.999, 0.999, 1.001)),
                        (("mixed_bfloat16", True), (0.99, 0.97, 1.03))):
        for update, ref in zip(updates[key], reference):  # weights, then EMA weights
            cosine = update @ ref / np.linalg.norm(update) / np.linalg.norm(ref)
            ratio = np.linalg.norm(update) / np.linalg.norm(ref)
            assert cosine > bounds[0] and bounds[1] < ratio < bounds[2], (key, cosine, ratio)


@pytest.mark.slow
def test_a_bfloat16_train_step_follows_float32():
    """One train_step (a tf.function) from the same weights on the same batch (augmentation
    off): the bfloat16 step's loss is float32's within 0.5 % and it moves the weights the
    same way. Measured over initial weights from seeds 0-5: loss within 0.25 %, cosine
    0.87-0.93, length ratio 0.92-1.09 (compiled with XLA about the same, which the fit
    test above covers); the weights are seeded so the suite's order cannot move them.
    A skipped update, a gradient left scaled, or a wrong cast in the network's output
    moves them elsewhere (a skipped bfloat16 update: tried, fails)."""
    keras.utils.set_random_seed(0)
    batch = _batch(8)
    off = AugmentConfig(**{k: 0.0 for k in AugmentConfig.__dataclass_fields__})
    results, start = {}, None
    for precision in ("float32", "mixed_bfloat16"):
        parser = _parser(precision=precision, augment=off, weights=start)
        start = start or parser.network.get_weights()
        assert parser(tf.zeros((1, SIZE, SIZE, 3))).dtype == tf.float32
        before = _flat(parser.network.trainable_weights)
        logs = tf.function(parser.train_step)(batch)
        results[precision] = float(logs["loss"]), _flat(parser.network.trainable_weights) - before
    (loss32, step32), (loss16, step16) = results["float32"], results["mixed_bfloat16"]
    assert abs(loss16 - loss32) / loss32 < 0.005, (loss16, loss32)
    cosine = step16 @ step32 / np.linalg.norm(step16) / np.linalg.norm(step32)
    ratio = np.linalg.norm(step16) / np.linalg.norm(step32)
    assert cosine > 0.8 and 0.8 < ratio < 1.25, (cosine, ratio)
