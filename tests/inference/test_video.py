"""facepars.inference.video through ``python -m facepars.predict``: videos beside photos.

The model is the colour parser (tests/colour_parser.py) saved as a SavedModel (the class
read from the pixel colour), and the videos are painted faces moving: every
frame's labels differ from the next one's, so a frame put in another's place
shows.
"""

import json

import imageio_ffmpeg
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facepars.core import files
from facepars.data import synthetic
from facepars.faces import detection
from facepars.inference import video
from facepars.inference.predictor import SAVED_MODEL_TABLE, Predictor

from colour_parser import SYNTHETIC_LUT, TABLE, colour_parser, paint, synthetic_framing
from conftest import run_cli


def _write_mp4(path, frames, fps):
    writer = imageio_ffmpeg.write_frames(str(path), frames[0].shape[1::-1], fps=fps,
                                         codec="libx264", quality=8, macro_block_size=1)
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    """The colour parser as an exported SavedModel, with the class table beside it."""
    path = str(tmp_path_factory.mktemp("colour") / "saved_model")
    module = tf.Module()
    module.network = tf.function(lambda images: {"logits": colour_parser(images)},
                                 input_signature=[tf.TensorSpec([None, 128, 128, 3])])
    tf.saved_model.save(module, path, signatures={"network": module.network})
    tf.io.gfile.makedirs(files.join(path, "assets.extra"))
    files.write_json_atomic(files.join(path, SAVED_MODEL_TABLE), {
        "class_table": TABLE.to_json(), "image_size": 128, "resize": "stretch",
        "framing": {"points": synthetic_framing().tolist()}})
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """An mp4 of moving faces at 12.5 fps, an animated GIF of odd size, a still GIF
    (a photo), and a file that is not a video at all."""
    d = tmp_path_factory.mktemp("clips")
    frames = [paint(SYNTHETIC_LUT[frame.mask])
              for frame in synthetic.moving_faces(1, 10, 120, 160, motion=0.3)]
    _write_mp4(d / "clip.mp4", frames, 12.5)
    small = [Image.fromarray(f[:75, :97]) for f in frames[:3]]
    small[0].save(d / "odd.gif", save_all=True, append_images=small[1:], duration=100)
    small[0].save(d / "still.gif")
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but nothing after")
    return d


def test_predict_parses_every_frame_of_a_video_as_it_parses_that_frame_alone(
        colour_model, clips, tmp_path):
    """With smoothing off, frame i's label PNG is what predict gives for frame i as a
    photo (frames decoded here by the same reader): an off-by-one, a frame dropped
    or reordered, or labels from another frame fail. The overlay keeps the frame
    count and rate; the bad file is named and the exit code says so."""
    out = tmp_path / "out"
    proc = run_cli("facepars.predict", f"--model_path={colour_model}", f"--output_dir={out}",
                   "--faces=whole", "--nosmooth", str(clips), check=False)
    assert proc.returncode == 1 and "broken.mp4" in proc.stderr, proc.stderr[-2000:]
    assert "1 photos and 2 videos parsed" in proc.stdout

    predictor = Predictor.load(colour_model)
    for name, size in (("clip", (160, 120)), ("odd", (97, 75))):
        suffix = ".mp4" if name == "clip" else ".gif"
        meta, frames = video.read_frames(str(clips / (name + suffix)))
        expected = [predictor.predict(frame).labels for frame in frames]
        assert len(expected) == (10 if name == "clip" else 3)
        labels = [out / f"{name}.labels" / f"{i:06d}.png" for i in range(len(expected))]
        assert sorted((out / f"{name}.labels").iterdir()) == labels
        assert all((a != b).any() for a, b in zip(expected, expected[1:]))
        for path, want in zip(labels, expected):
            got = Image.open(path)
            assert got.mode == "P" and got.size == size
            np.testing.assert_array_equal(np.asarray(got), want, err_msg=str(path))
        summary = json.loads((out / f"{name}.summary.json").read_text())
        assert summary["frames"] == len(expected) and summary["fps"] == meta["fps"]
        assert abs(sum(summary["classes"].values()) - 1) < 1e-6
        overlay_meta, overlay = video.read_frames(str(out / f"{name}.overlay.mp4"))
        assert overlay_meta["frames"] == len(expected) and overlay_meta["fps"] == meta["fps"]
        assert next(overlay).shape[:2] == (size[1] + size[1] % 2, size[0] + size[0] % 2)
    assert next(iter(json.loads((out / "summary.json").read_text())["failures"])).startswith(
        str(clips / "broken.mp4"))
    assert (out / "still.labels.png").exists()  # a one-frame GIF is a photo
    assert json.loads((out / "clip.summary.json").read_text())["fps"] == 12.5


def test_videos_are_refused_on_beam_with_what_to_do_instead(colour_model, clips, tmp_path):
    proc = run_cli("facepars.predict", "--runner=beam", f"--model_path={colour_model}",
                   f"--output_dir={tmp_path / 'out'}", str(clips / "clip.mp4"), check=False)
    assert proc.returncode == 1 and "clip.mp4: videos are parsed with --runner=local" in \
        proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "out").exists()


class _ColourDetector:
    """A stand-in detector that reads the painted face: its five points from the
    decoded frame's colours, as prepare measures them from a mask; ``relocate``
    finds it again the same way. Counts its full runs."""

    def __init__(self):
        self.full_runs = 0

    def _find(self, frame):
        from facepars.data import framing
        labels = (np.asarray(frame) > 127).astype(np.int64) @ np.array([1, 2, 4])
        points = framing.points_from_mask(labels, framing.FramingClasses.of(TABLE))
        return [] if points is None else [detection.from_landmarks(points)]

    def __call__(self, frame):
        self.full_runs += 1
        return self._find(frame)

    def relocate(self, frame, faces):
        return [found[0] if (found := self._find(frame)) else
                detection.Face(f.box, f.landmarks, 0.0) for f in faces]


@pytest.mark.parametrize("container", ["mp4", "mov", "mkv", "avi"])
def test_a_video_through_predict_tracks_its_face_with_the_detector(
        colour_model, tmp_path, monkeypatch, container):
    """``predict`` on a video with a (stand-in) detector: the tracked path. The
    summary lists the face on every frame under one track id, with its box and five
    points near the true ones; the detector runs in full every ``detect_every``
    frames only; the overlay is H.264 with the box drawn; every container the README
    names is read."""
    from facepars import predict_lib
    moving = list(synthetic.moving_faces(2, 12, 120, 160, motion=0.3))
    path = tmp_path / f"clip.{container}"
    writer = imageio_ffmpeg.write_frames(str(path), (160, 120), fps=10, macro_block_size=1,
                                         codec="mpeg4" if container == "avi" else "libx264",
                                         quality=9)
    writer.send(None)
    for frame in moving:
        writer.send(np.ascontiguousarray(paint(SYNTHETIC_LUT[frame.mask])))
    writer.close()
    detector = _ColourDetector()
    monkeypatch.setattr(detection, "default_detector", lambda: detector)
    out = tmp_path / "out"
    summary, failures = predict_lib.run(colour_model, [str(path)], str(out), faces="detect",
                                        detect_every=5)
    assert failures == []
    record = json.loads((out / "clip.summary.json").read_text())
    assert record["frames"] == 12 and len(record["faces"]) == 12
    assert {face["track"] for frame in record["faces"] for face in frame} == {0}
    for frame, truth in zip(record["faces"], moving):
        (face,) = frame
        assert np.abs(np.array(face["landmarks"]) - truth.landmarks[0]).max() < 4
        x0, y0, x1, y1 = face["box"]
        assert x0 < truth.landmarks[0][:, 0].min() and x1 > truth.landmarks[0][:, 0].max()
    assert detector.full_runs == record["detections"] == 3  # frames 0, 5 and 10
    assert next(imageio_ffmpeg.read_frames(str(out / "clip.overlay.mp4")))["codec"] == "h264"
    meta, frames = video.read_frames(str(out / "clip.overlay.mp4"))
    assert meta["frames"] == 12
    first = next(frames).astype(int)
    x0, y0, x1, y1 = (int(round(v)) for v in record["faces"][0][0]["box"])
    plain = paint(SYNTHETIC_LUT[moving[0].mask]).astype(int)
    edge = first[max(y0, 0):min(y1, 119), max(x0, 0)]
    assert np.abs(edge - plain[max(y0, 0):min(y1, 119), max(x0, 0)]).mean() > 20  # the box
