import keras
import numpy as np
import pytest
import tensorflow as tf

from facepars.core.errors import ConfigError
from facepars.models import MODELS, backbones, build_model, load_model, modules
from facepars.training.losses import fused_loss

from conftest import TINY as TINY_FAMILY

TINY = 0.25


@pytest.fixture(params=["mixed_bfloat16", "mixed_float16"])
def mixed_policy(request):
    """Each mixed precision in turn as the global policy: its compute dtype."""
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param.removeprefix("mixed_")
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name", sorted(MODELS) + [TINY_FAMILY])
def test_model_builds_trains_and_round_trips(name, tmp_path, mixed_policy):
    rng = np.random.default_rng(0)
    for size in (64, 96):
        model = build_model(name, 5, size, width=TINY)
        images = rng.random((2, size, size, 3)).astype(np.float32)
        labels = rng.integers(0, 5, (2, size, size))
        logits = model(images, training=False)
        assert logits.shape == (2, size, size, 5) and logits.dtype == tf.float32
        assert model.layers[-1].compute_dtype == "float32"
        assert any(l.compute_dtype == mixed_policy for l in model.layers)

    optimizer = keras.optimizers.SGD(0.01)
    before = [w.numpy().copy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        loss = fused_loss(labels, model(images, training=True))["loss"]
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.isfinite(tf.cast(g, tf.float32).numpy()).all() for g in grads)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))

    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    as_saved = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_array_equal(model(images, training=False), as_saved(images, training=False))
    # What evaluate, predict and export load: the same weights, computing in float32.
    again = load_model(path)
    assert {layer.compute_dtype for layer in again.layers} == {"float32"}
    for ours, saved in zip(again.weights, model.weights):
        np.testing.assert_array_equal(ours.numpy(), saved.numpy())
    keras.mixed_precision.set_global_policy("float32")
    float32 = build_model(name, 5, 96, width=TINY)
    float32.set_weights(model.get_weights())
    np.testing.assert_allclose(again(images, training=False), float32(images, training=False),
                               rtol=1e-5, atol=1e-6)


def test_a_model_is_registered_or_a_family_module_named_by_its_import_path(tmp_path,
                                                                           monkeypatch):
    """A module of the user's splits into backbone, decoder and classifier by the
    names it gives; what is not a family is refused naming what is missing."""
    network = build_model(TINY_FAMILY, 5, 64)
    parts = {m: {l.name for l in layers} for m, layers in modules(network, TINY_FAMILY).items()}
    assert parts["classifier"] == {"tiny_high_classifier", "tiny_low_classifier"}
    assert {"tiny_stem_conv", "tiny_block1_depthwise", "tiny_block2_bn"} <= parts["backbone"]
    assert parts["decoder"] == {"tiny_branch_conv", "tiny_branch_bn"}

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "half.py").write_text("def build(*args, **kwargs): pass\n"
                                               "CLASSIFIERS = ('head',)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, message in (
            ("lraspp", r"unknown model 'lraspp'; registered: pspnet_resnet50, .* or the "
                       r"import path of your own family module"),
            ("mine.absent", r"model 'mine.absent': cannot import it \(No module named"),
            ("mine.half", r"model 'mine.half': .*half.py defines no BACKBONE_OUTPUTS \(a "
                          r"family module defines build, BACKBONE_OUTPUTS, CLASSIFIERS")):
        with pytest.raises(ConfigError, match=message):
            build_model(name, 5, 64)


@pytest.mark.slow
def test_full_size_models_build_at_256():
    for name in sorted(MODELS):
        model = build_model(name, 8, 256)
        assert model(np.zeros((1, 256, 256, 3), np.float32)).shape == (1, 256, 256, 8)


def test_backbone_weights_load_from_a_keras_application_file(tmp_path):
    public = keras.applications.MobileNetV3Large(include_top=False, weights=None,
                                                 input_shape=(64, 64, 3))
    path = str(tmp_path / "mobilenet.weights.h5")
    public.save_weights(path)
    model = build_model("lraspp_mobilenetv3", 3, 64, weights=path)
    np.testing.assert_array_equal(model.get_layer("expanded_conv_11_project").get_weights()[0],
                                  public.get_layer("expanded_conv_11_project").get_weights()[0])


def test_resnet_weights_fold_bgr_into_the_first_convolution(tmp_path):
    public = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    path = str(tmp_path / "resnet.weights.h5")
    public.save_weights(path)
    model = build_model("pspnet_resnet50", 3, 64, weights=path)
    ours = model.get_layer("conv1_conv").get_weights()[0]
    np.testing.assert_array_equal(ours, public.get_layer("conv1_conv").get_weights()[0][:, :, ::-1])


def test_failed_imagenet_download_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: Temporary failure in name resolution")
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", offline)
    monkeypatch.setattr("keras.src.applications.mobilenet_v3.file_utils.get_file", offline)
    with pytest.raises(ConfigError, match="weights=None"):
        build_model("lraspp_mobilenetv3", 3, 64, weights="imagenet")


def test_pretrained_weights_refuse_a_scaled_width():
    with pytest.raises(ValueError, match="width"):
        backbones.resnet50(keras.Input((64, 64, 3)), width=0.5, weights="imagenet")


def test_unknown_model_lists_the_registry():
    with pytest.raises(ValueError, match="lraspp_mobilenetv3"):
        build_model("unet", 3)
