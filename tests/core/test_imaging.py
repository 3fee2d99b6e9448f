import io

import numpy as np
import pytest
from PIL import Image

from facepars.core import imaging
from facepars.core.classes import IGNORE_LABEL
from facepars.core.imaging import BadInput


def _photo(h=40, w=60):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode,ext", [("L", "png"), ("RGBA", "png"), ("P", "png"),
                                      ("CMYK", "jpg"), ("RGB", "bmp"), ("RGB", "jpg")])
def test_read_image_gives_8bit_rgb(tmp_path, mode, ext):
    path = str(tmp_path / f"x.{ext}")
    Image.fromarray(_photo()).convert(mode).save(path)
    out, _ = imaging.read_image(path)
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)


def test_jpeg_draft_decodes_smaller_but_reports_the_stored_size(tmp_path):
    path = str(tmp_path / "big.jpg")
    Image.fromarray(_photo(800, 1000)).save(path)
    small, stored = imaging.read_image(path, at_least=(64, 64))
    assert stored == (800, 1000)
    assert 128 <= small.shape[0] < 800 and 128 <= small.shape[1] < 1000


def test_read_16bit_grey_scales_to_8bit(tmp_path):
    values = np.linspace(0, 65535, 40 * 60).reshape(40, 60).astype(np.uint16)
    path = str(tmp_path / "deep.png")
    Image.fromarray(values).save(path)
    out, _ = imaging.read_image(path)
    assert out.shape == (40, 60, 3)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255


def test_read_rgba_composites_over_black(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:2, ..., 3] = 255
    path = str(tmp_path / "a.png")
    Image.fromarray(rgba, "RGBA").save(path)
    out, _ = imaging.read_image(path)
    assert (out[:2] == 200).all() and (out[2:] == 0).all()


def test_exif_orientation_applied_only_when_asked(tmp_path):
    img = Image.fromarray(_photo(20, 50))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = str(tmp_path / "rot.jpg")
    img.save(path, exif=exif.tobytes())
    assert imaging.read_image(path)[0].shape == (20, 50, 3)
    assert imaging.read_image(path, apply_exif=True)[0].shape == (50, 20, 3)


@pytest.mark.parametrize("content", [b"", b"not an image", None])
def test_unreadable_files_name_the_file(tmp_path, content):
    path = tmp_path / "bad.jpg"
    if content is None:  # truncated JPEG
        buf = io.BytesIO()
        Image.fromarray(_photo(200, 200)).save(buf, "JPEG")
        content = buf.getvalue()[:len(buf.getvalue()) // 2]
    path.write_bytes(content)
    with pytest.raises(BadInput, match="bad.jpg"):
        imaging.read_image(str(path))


def test_read_mask_takes_channel_0_and_palette_indices(tmp_path):
    ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = np.stack([ids, ids * 0 + 99, ids * 0 + 7], -1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(imaging.read_mask(str(tmp_path / "rgb.png")), ids)
    pal = Image.fromarray(ids)
    pal.putpalette([0, 0, 0, 255, 0, 0] * 128)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(imaging.read_mask(str(tmp_path / "p.png")), ids)


def test_mask_resize_never_invents_labels_and_pads_with_ignore():
    rng = np.random.default_rng(1)
    mask = rng.choice(np.array([0, 3, 7], np.uint8), (97, 61))
    for mode in ("stretch", "pad"):
        out = imaging.resize_mask(mask, imaging.geometry(97, 61, 32, mode))
        assert out.shape == (32, 32)
        assert set(np.unique(out)) <= {0, 3, 7, IGNORE_LABEL}
    padded = imaging.resize_mask(mask, imaging.geometry(97, 61, 32, "pad"))
    top, left, h, w = imaging.geometry(97, 61, 32, "pad").content_box
    assert (h, w) == (32, 20) and (top, left) == (0, 6)
    assert (padded[:, :left] == IGNORE_LABEL).all() and (padded[:, left + w:] == IGNORE_LABEL).all()
    assert not (padded[:, left:left + w] == IGNORE_LABEL).any()


def test_palette_mask_png_keeps_ids_and_shows_colours():
    mask = np.array([[0, 1], [2, 1]], np.uint8)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    img = Image.open(io.BytesIO(imaging.encode_mask(mask, palette)))
    assert img.mode == "P"
    np.testing.assert_array_equal(np.asarray(img), mask)
    np.testing.assert_array_equal(np.asarray(img.convert("RGB"))[0, 1], [255, 0, 0])


def _warp_whole_photo(array, matrix, size, nearest, fill):
    """Reference: reduce the whole photo, then one Pillow affine transform of all of it."""
    img = Image.fromarray(array)
    factor = 1 if nearest else imaging.reduction(matrix)
    if factor > 1:
        img = img.reduce(factor)
        matrix = imaging.shifted(matrix, (factor - 1) / 2, (factor - 1) / 2, factor)
    b = imaging.invert(matrix)
    data = [b[0, 0], b[0, 1], b[0, 2] + 0.5 - 0.5 * (b[0, 0] + b[0, 1]),
            b[1, 0], b[1, 1], b[1, 2] + 0.5 - 0.5 * (b[1, 0] + b[1, 1])]
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(img.transform((size, size), Image.Transform.AFFINE, data,
                                    resample=resample, fillcolor=fill))


@pytest.mark.parametrize("scale", [1.3, 0.45, 0.19, 0.07])  # reductions by 1, 2, 5, 14
@pytest.mark.parametrize("angle", [0.0, 0.5, -2.0])
def test_warp_touches_only_the_crops_window_and_matches_warping_the_whole_photo(scale, angle):
    """The window cut on the reduction's block grid changes nothing: a window not
    on that grid (or too tight for bilinear's neighbours) moves pixels by whole levels."""
    rng = np.random.default_rng([int(scale * 100), int(angle * 10) + 20])
    photo = rng.integers(0, 256, (1500, 1700, 3), np.uint8)
    labels = rng.integers(0, 9, (1500, 1700), np.uint8)
    centre = rng.uniform(300, 1300, 2)
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = np.hstack([rot, (np.array([32.0, 32.0]) - rot @ centre)[:, None]])
    for array, nearest, fill in ((photo, False, (0, 0, 0)), (labels, True, 255)):
        np.testing.assert_array_equal(imaging.warp(array, matrix, 64, nearest, fill),
                                      _warp_whole_photo(array, matrix, 64, nearest, fill))
    outside = np.hstack([rot, (np.array([32.0, 32.0]) - rot @ [-900.0, 0.0])[:, None]])
    assert (imaging.warp(labels, outside, 64, True, 255) == 255).all()
