import numpy as np
import pytest
import tensorflow as tf

from facepars.configs.common import NO_AUGMENTATION, AugmentConfig
from facepars.core.classes import IGNORE_LABEL, TAXONOMIES
from facepars.data import augment, synthetic
from facepars.data.augment import Augmenter

TABLE = TAXONOMIES["lapa11"].table
GEOMETRY_ONLY = AugmentConfig(flip=0.5, scale=0.3, rotate=30, translate=0.15, brightness=0,
                              contrast=0, saturation=0, hue=0, blur=0, noise=0)


def _masks(n=6, size=64):
    from facepars.core.classes import SOURCE_TABLES
    lut, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES["lapa11"])
    return np.stack([lut[synthetic.render(9, i, size, size)[1]] for i in range(n)])


def _colour_coded(masks):
    palette = np.random.default_rng(0).random((256, 3)).astype(np.float32)
    palette[0] = 0.0  # background black, like the fill
    return palette, palette[masks]


def _near_boundary(mask, reach=2):
    """Pixels within ``reach`` output pixels of a label change.

    With zoom up to 1.3 one input pixel spans up to 1.3 output pixels, so "within
    one input pixel of a boundary" is within 2 output pixels. The frame counts
    as a boundary: the next label may lie just outside it.
    """
    m = np.pad(mask.astype(int), ((0, 0), (reach, reach), (reach, reach)), constant_values=-1)
    near = np.zeros(mask.shape, bool)
    h, w = mask.shape[1:]
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            near |= m[:, reach + dy:reach + dy + h, reach + dx:reach + dx + w] != mask
    return near


@pytest.mark.parametrize("fill", [0, IGNORE_LABEL])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometry_keeps_image_and_mask_aligned(seed, fill):
    """Colours that encode the mask still match it after the transform, except
    within one (input) pixel of a boundary."""
    masks = _masks()
    palette, images = _colour_coded(masks)
    aug = Augmenter(GEOMETRY_ONLY, TABLE, fill_label=fill)
    out_images, out_masks = aug(tf.constant(images), tf.constant(masks), tf.constant([seed, 7]))
    out_images, out_masks = out_images.numpy(), out_masks.numpy()
    assert not np.array_equal(out_masks, masks)
    # Colours follow the mask; a flip swaps left/right classes but not their colours.
    perm = TABLE.flip_permutation()
    inside = out_masks != fill
    expected = np.where(inside[..., None], palette[np.where(inside, out_masks, 0)], 0.0)
    swapped = palette[
        np.where(inside, np.concatenate([perm, np.arange(len(perm), 256)])[out_masks], 0)
    ]
    ok = (np.abs(out_images - expected).max(-1) < 1e-4) | (
        np.abs(out_images - swapped).max(-1) < 1e-4
    )
    # The photo's own edge is a boundary too: where the bilinear image blends with
    # the outside, a transformed all-ones image drops below 1.
    ones, _ = aug(tf.ones_like(images), tf.constant(masks), tf.constant([seed, 7]))
    ok |= _near_boundary(out_masks) | (ones.numpy().min(-1) < 1 - 1e-4)
    assert ok.mean() == 1.0, f"{(~ok).sum()} misaligned pixels"
    assert set(np.unique(out_masks)) <= set(np.unique(masks)) | {fill}


def test_flip_swaps_the_flip_pairs():
    masks = _masks(3)
    aug = Augmenter(AugmentConfig(flip=1.0, scale=0, rotate=0, translate=0), TABLE)
    images = np.zeros(masks.shape + (3,), np.float32)
    _, out = aug(tf.constant(images), tf.constant(masks), tf.constant([0, 0]))
    perm = TABLE.flip_permutation()
    np.testing.assert_array_equal(out.numpy(), perm[masks[:, :, ::-1]])
    left_eye = TABLE.names.index("left_eye")
    assert (masks == left_eye).any() and (out.numpy() == left_eye).any()


def test_photometric_changes_only_the_image_and_stays_in_range():
    masks = _masks(4)
    images = _colour_coded(masks)[1]
    aug = Augmenter(AugmentConfig(flip=0, scale=0, rotate=0, translate=0, blur=0.5, noise=0.05),
                    TABLE)
    out_images, out_masks = aug(tf.constant(images), tf.constant(masks), tf.constant([3, 3]))
    np.testing.assert_array_equal(out_masks, masks)
    assert 0.0 <= out_images.numpy().min() and out_images.numpy().max() <= 1.0
    assert np.abs(out_images.numpy() - images).mean() > 0.01


def test_seeded_and_reproducible():
    masks = _masks(4)
    images = tf.constant(_colour_coded(masks)[1])
    aug = Augmenter(AugmentConfig(), TABLE)
    a = aug(images, tf.constant(masks), tf.constant([5, 1]))
    b = aug(images, tf.constant(masks), tf.constant([5, 1]))
    c = aug(images, tf.constant(masks), tf.constant([5, 2]))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_no_augmentation_is_the_identity():
    masks = _masks(2)
    images = _colour_coded(masks)[1]
    out = Augmenter(NO_AUGMENTATION, TABLE)(tf.constant(images), tf.constant(masks),
                                            tf.constant([0, 0]))
    np.testing.assert_array_equal(out[1], masks)
    np.testing.assert_allclose(out[0], images, atol=1e-6)


@pytest.mark.parametrize("fill", [0, IGNORE_LABEL])
def test_sampling_matches_the_projective_transform_op(fill):
    """The gather-based sampler against TensorFlow's ImageProjectiveTransformV3 (the
    op it replaces, which has no XLA kernel) on strong random geometry: a wrong
    grid convention, a swapped axis or a half-pixel shift moves whole edges and
    fails by far more than boundary rounding allows."""
    masks = _masks(8)
    images = np.stack([synthetic.render(9, i, 64, 64)[0] for i in range(8)]) / np.float32(255)
    rng = np.random.default_rng(3)
    transforms = augment._inverse_transforms(
        tf.constant(rng.random(8) < 0.5), tf.constant(rng.uniform(0.7, 1.3, 8), tf.float32),
        tf.constant(rng.uniform(-0.6, 0.6, 8), tf.float32),
        tf.constant(rng.uniform(-10, 10, (8, 2)), tf.float32), 64)
    reference = {key: tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=[64, 64], fill_value=value,
        interpolation=interpolation, fill_mode="CONSTANT")
        for key, x, value, interpolation in (("image", images, 0.0, "BILINEAR"),
                                             ("mask", masks[..., None], float(fill), "NEAREST"))}
    sample = tf.function(augment.affine_sample, jit_compile=True)  # and it compiles
    out_images, out_masks = sample(tf.constant(images), tf.constant(masks), transforms, fill)
    assert (out_masks.numpy() != reference["mask"].numpy()[..., 0]).mean() <= 0.005
    assert np.abs(out_images.numpy() - reference["image"].numpy()).max() < 1e-4
    assert (out_masks.numpy() == fill).any()  # the geometry did bring in outside pixels


def test_the_compiled_augmentation_matches_its_ops_run_eagerly():
    """A call runs the augmentation compiled with XLA; the same ops run one by one
    must give the same batch (XLA draws other random floats than the CPU kernels
    unless the draws are built from integer bits)."""
    masks = _masks(4)
    images = tf.constant(_colour_coded(masks)[1])
    aug = Augmenter(AugmentConfig(), TABLE)  # every default transform, hue and saturation too
    eager = aug.transform(images, tf.constant(masks), tf.constant([4, 2]))
    assert aug._compiled.experimental_get_tracing_count() == 0
    compiled = aug(images, tf.constant(masks), tf.constant([4, 2]))
    # The call went through the XLA function (else this compares the ops with themselves).
    assert aug._compiled.experimental_get_tracing_count() == 1
    assert aug._compiled._jit_compile is True  # tf.function's own record of jit_compile
    np.testing.assert_array_equal(compiled[1], eager[1])
    np.testing.assert_allclose(compiled[0], eager[0], atol=1e-4)


def test_colour_matrices_act_on_chroma_only():
    """Saturation 0 leaves luma as grey; a hue turn keeps luma and chroma length;
    grey stays grey (what lets brightness and contrast fold into one affine)."""
    rgb = np.random.default_rng(1).random((50, 3)).astype(np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    grey = augment.colour_matrices(tf.constant([0.0]), tf.constant([0.7]))[0].numpy()
    np.testing.assert_allclose(rgb @ grey.T, np.repeat(luma[:, None], 3, 1), atol=1e-5)
    turn = augment.colour_matrices(tf.constant([1.0]), tf.constant([2.0]))[0].numpy()
    turned = rgb @ turn.T
    np.testing.assert_allclose(turned @ np.array([0.299, 0.587, 0.114]), luma, atol=1e-5)
    chroma = lambda x: np.linalg.norm((x @ augment._RGB_TO_YIQ.T)[:, 1:], axis=1)
    np.testing.assert_allclose(chroma(turned), chroma(rgb), atol=1e-5)
    assert not np.allclose(turned, rgb, atol=1e-2)
    np.testing.assert_allclose(turn @ np.ones(3), np.ones(3), atol=1e-6)


def test_blur_equals_the_binomial_depthwise_convolution():
    images = tf.random.stateless_uniform((2, 9, 11, 3), [0, 1])
    kernel = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    reference = tf.nn.depthwise_conv2d(images, np.tile(kernel[:, :, None, None], [1, 1, 3, 1]),
                                       [1, 1, 1, 1], "SAME")
    np.testing.assert_allclose(augment.binomial_blur(images), reference, atol=1e-6)


def test_noise_has_zero_mean_and_unit_variance():
    noise = augment.random_noise([200_000], tf.constant([3, 4])).numpy()
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1) < 0.01
    bound = np.float32(np.sqrt(6))
    assert noise.max() <= bound and noise.min() >= -bound
    # Triangular on [-b, b]: 3/4 of the values within b/2 (a uniform of unit
    # variance would put 0.71 there, a Gaussian 0.78).
    assert abs((np.abs(noise) < bound / 2).mean() - 0.75) < 0.01
