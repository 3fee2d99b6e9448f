"""The photo <-> network-input mapping against prepare's own (Pillow) geometry and pixels."""

import numpy as np
import pytest
import tensorflow as tf

from facepars.core import imaging
from facepars.core.classes import IGNORE_LABEL, SOURCE_TABLES, TAXONOMIES
from facepars.data import synthetic
from facepars.inference import serving

SIZES = [(1, 1), (4, 300), (299, 3), (97, 131), (131, 97), (255, 257), (1000, 999), (64, 64)]


@pytest.mark.parametrize("mode", ["stretch", "pad"])
def test_content_box_is_prepares(mode):
    """The graph's box is the one prepare placed training photos in (a box one
    pixel off would shift every label of a padded photo)."""
    for size in (64, 256):
        for h, w in SIZES:
            box = [int(v) for v in serving.content_box(h, w, size, mode)]
            assert tuple(box) == imaging.geometry(h, w, size, mode).content_box, (h, w, size)


@pytest.mark.parametrize("mode", ["stretch", "pad"])
def test_network_input_matches_prepares_pixels(mode):
    """Pillow (prepare) and the graph (serving) resize with the same triangle
    filter (Pillow rounds between its passes): measured 0.07-0.19 levels apart on
    average, 3 at most, and the same black border in pad mode."""
    for index, (h, w) in enumerate([(240, 170), (97, 131), (48, 40), (1000, 800)]):
        photo = synthetic.render(3, index, h, w)[0]
        reference = imaging.resize_image(photo, imaging.geometry(h, w, 64, mode)).astype(np.float32)
        x, _ = serving.network_input(tf.constant(photo)[None], 64, mode)
        diff = np.abs(x[0].numpy() * 255.0 - reference)
        assert diff.mean() < 0.3 and diff.max() <= 4, (h, w, diff.mean(), diff.max())
        top, left, bh, bw = imaging.geometry(h, w, 64, mode).content_box
        outside = np.ones((64, 64), bool)
        outside[top:top + bh, left:left + bw] = False
        assert (x[0].numpy()[outside] == 0).all()


@pytest.mark.parametrize("mode", ["stretch", "pad"])
def test_photo_logits_undo_stretch_and_pad(mode):
    """A model that predicts the resized ground truth scores >= 0.98 IoU per class
    once its logits are taken back to the photo's own size (for classes of 2000+
    pixels: a thin part's one-pixel resampling border alone costs more). A box
    off by a pixel or a resize the wrong way round fails it."""
    lut, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES["seed8"])
    for index, (h, w) in enumerate([(320, 256), (256, 340)]):
        mask = lut[synthetic.render(4, index, h, w)[1]]
        small = imaging.resize_mask(mask, imaging.geometry(h, w, 256, mode))
        logits = tf.one_hot(np.where(small == IGNORE_LABEL, 0, small), 8)[None] * 10.0
        box = serving.content_box(h, w, 256, mode)
        back = np.argmax(serving.photo_logits(logits, box, h, w)[0], -1)
        for c in np.unique(mask):
            inter = ((back == c) & (mask == c)).sum()
            union = ((back == c) | (mask == c)).sum()
            assert inter / union >= 0.98 or (mask == c).sum() < 2000, (mode, c, inter / union)


def _jpeg_with_orientation(image, orientation, byte_order):
    """JPEG bytes with an APP1 Exif segment written by hand (either TIFF byte order)."""
    import io
    import struct

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=95)
    jpeg = buf.getvalue()
    e = "<" if byte_order == b"II" else ">"
    entries = [(0x010F, 2, 4, b"abc\x00"), (0x0112, 3, 1, struct.pack(e + "HH", orientation, 0))]
    ifd = struct.pack(e + "H", len(entries)) + b"".join(
        struct.pack(e + "HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    tiff = byte_order + struct.pack(e + "HI", 42, 8) + ifd + struct.pack(e + "I", 0)
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def _png_with_orientation(image, orientation, byte_order):
    """PNG bytes with an eXIf chunk, as Pillow writes it (the TIFF data of the JPEG's)."""
    import io

    from PIL import Image
    tiff = _jpeg_with_orientation(image, orientation, byte_order).split(b"Exif\x00\x00")[1]
    tiff = tiff[:tiff.index(b"\xff\xdb")]  # up to the JPEG's next segment
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG", exif=b"Exif\x00\x00" + tiff)
    return buf.getvalue()


@pytest.mark.parametrize("byte_order", [b"II", b"MM"])
@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_encoded_photos_are_decoded_upright_as_predict_reads_them(tmp_path, byte_order, fmt):
    """Every EXIF orientation, both TIFF byte orders, JPEG's Exif segment and PNG's
    eXIf chunk: the graph's decode gives the pixels imaging.read_image(apply_exif=True)
    gives (Pillow is the reference)."""
    image = synthetic.render(2, 0, 30, 44)[0]
    decode = tf.function(serving.decode_photo)
    encode = {"jpg": _jpeg_with_orientation, "png": _png_with_orientation}[fmt]
    for orientation in range(1, 9):
        data = encode(image, orientation, byte_order)
        assert (b"eXIf" in data) == (fmt == "png")
        path = tmp_path / f"{orientation}.{fmt}"
        path.write_bytes(data)
        expected, _ = imaging.read_image(str(path), apply_exif=True)
        got = decode(tf.constant(data)).numpy()
        assert got.shape == expected.shape, orientation
        assert np.abs(got.astype(int) - expected).max() <= 1, orientation
    for junk in (b"", b"\xff\xd8Exif\x00\x00II*\x00\xff\xff\xff\x7f", b"\xff\xd8Exif\x00\x00MM"):
        assert int(serving.exif_orientation(tf.constant(junk))) == 1
