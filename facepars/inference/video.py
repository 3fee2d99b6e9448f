"""Videos through a face parser, frame by frame: what ``predict`` does with a video file.

For ``clip.mp4`` under the output directory:

  clip.overlay.mp4        the frames blended with the class colours, tracked faces boxed
                          (H.264, the source's frame count and frame rate)
  clip.labels/000000.png  one palette PNG of class ids per frame (lossless, as for photos)
  clip.summary.json       fps, frame count, size, per-class pixel fractions over the
                          video, and each frame's faces (track id, box, five points)

Frames stream through ffmpeg (the ``video`` extra: imageio-ffmpeg, whose wheel
carries an ffmpeg binary) and are written as they are parsed, so memory stays
flat however long the video is. Faces are tracked and labels smoothed across
frames as facepars.inference.tracking describes.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import shutil
import tempfile
from concurrent import futures

import numpy as np
import tensorflow as tf
from PIL import Image

from facepars.core import files, imaging, visualize
from facepars.core.errors import ConfigError
from facepars.core.imaging import BadInput
from facepars.core.progress import Progress
from facepars.inference.predictor import Predictor
from facepars.inference.tracking import FaceTracker

VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".gif")


def is_video(path: str) -> bool:
    """Video by extension; a GIF only when it has more than one frame (else it is a photo)."""
    extension = os.path.splitext(path)[1].lower()
    if extension != ".gif":
        return extension in VIDEO_EXTENSIONS
    try:
        with Image.open(path) as image:
            return getattr(image, "n_frames", 1) > 1
    except OSError:
        return False  # left to the photo reader, which names the problem


def _ffmpeg():
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ConfigError("videos need the video extra: pip install 'facepars[video]'")
    import imageio_ffmpeg
    return imageio_ffmpeg


def read_frames(path: str):
    """(meta, frames): meta has fps, size (width, height) and frames (a count);
    frames yields uint8 (H, W, 3) arrays one at a time. A video in a bucket is
    first copied to a local temporary file (ffmpeg reads local files)."""
    ffmpeg = _ffmpeg()
    local, scratch = path, None
    if files.is_url(path):
        scratch = tempfile.mkdtemp(prefix="facepars-video-")
        local = os.path.join(scratch, os.path.basename(path))
        tf.io.gfile.copy(path, local)
    try:
        count, _ = ffmpeg.count_frames_and_secs(local)
        reader = ffmpeg.read_frames(local, pix_fmt="rgb24")
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as e:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        raise BadInput(path, f"cannot read it as a video ({str(e).strip().splitlines()[-1]})"
                       ) from e
    width, height = meta["size"]
    meta = {"fps": float(meta["fps"]), "size": [width, height], "frames": int(count)}

    def frames():
        try:
            for data in reader:
                yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
        finally:
            reader.close()
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
    return meta, frames()


class OverlayWriter:
    """H.264 at the source's frame rate, written locally and then moved into place
    (so a bucket gets a whole file, and a stopped run leaves no half video)."""

    def __init__(self, path: str, width: int, height: int, fps: float):
        ffmpeg = _ffmpeg()
        self.path = path
        self._dir = tempfile.mkdtemp(prefix="facepars-video-")
        self._local = os.path.join(self._dir, os.path.basename(path))
        # yuv420p, the pixel format every player takes, needs even sides: odd ones
        # are padded by repeating the last row or column.
        self._pad = (height % 2, width % 2)
        self._writer = ffmpeg.write_frames(
            self._local, (width + self._pad[1], height + self._pad[0]), fps=fps,
            codec="libx264", quality=7, macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-preset", "veryfast"])  # half the CPU of the default, as small
        self._writer.send(None)

    def write(self, frame: np.ndarray) -> None:
        if any(self._pad):
            frame = np.pad(frame, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        self._writer.send(np.ascontiguousarray(frame))

    def close(self, keep: bool = True) -> None:
        """Finish the file and move it into place (``keep``), or throw it away."""
        try:
            self._writer.close()
            if keep:
                with open(self._local, "rb") as f:
                    files.write_bytes_atomic(self.path, f.read())
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


def parse_video(predictor: Predictor, detector, path: str, output_dir: str, name: str,
                **tracking) -> dict:
    """Parse every frame of ``path``, write its outputs under ``output_dir`` as ``name``;
    returns the summary (also written as NAME.summary.json). ``detector`` None parses
    whole frames; ``tracking`` are facepars.inference.tracking.FaceTracker's options."""
    meta, frames = read_frames(path)
    width, height = meta["size"]
    tracker = FaceTracker(predictor, detector, meta["fps"], **tracking)
    table = predictor.table
    stem = files.join(output_dir, os.path.splitext(name)[0])
    labels_dir = stem + ".labels"
    tf.io.gfile.makedirs(labels_dir)
    writer = OverlayWriter(stem + ".overlay.mp4", width, height, meta["fps"])

    def finish(index, frame, labels_of, boxes):
        """The frame's labels onto it, and its outputs written; returns its class counts."""
        labels = labels_of().labels
        picture = visualize.overlay(frame, labels, table)
        writer.write(visualize.draw_boxes(picture, boxes) if boxes else picture)
        files.write_bytes_atomic(files.join(labels_dir, f"{index:06d}.png"),
                                 imaging.encode_mask(labels, table.palette()))
        return np.bincount(labels.ravel(), minlength=table.num_classes)

    counts = np.zeros(table.num_classes, np.int64)
    faces, pending = [], collections.deque()
    progress = Progress(name, meta["frames"], "frames", every=5.0)
    # Each frame is finished (labels back onto it, outputs written) on a second
    # thread while the next is tracked: TensorFlow, encoding and file writes
    # release the GIL. A few frames queue at most, so memory stays flat.
    finished = False
    with futures.ThreadPoolExecutor(1) as pool:
        try:
            for index, frame in enumerate(frames):
                labels_of = tracker.track(frame)
                boxes = [f["box"] for f in tracker.last_faces]
                pending.append(pool.submit(finish, index, frame, labels_of, boxes))
                faces.append(tracker.last_faces)
                while len(pending) > 3 or (pending and pending[0].done()):
                    counts += pending.popleft().result()
                    progress.total = max(progress.total, progress.done + 1)
                    progress.update()
            while pending:
                counts += pending.popleft().result()
                progress.update()
            finished = True
        finally:
            for job in pending:
                job.cancel()
            pool.shutdown(wait=True)
            tracker.close()
            writer.close(keep=finished)
    written = len(faces)
    summary = {"fps": meta["fps"], "frames": written, "size": meta["size"],
               "detections": tracker.detections, "smooth": tracker.smooth,
               "classes": {n: float(c) / max(counts.sum(), 1)
                           for n, c in zip(table.names, counts)},
               "faces": faces}
    files.write_json_atomic(stem + ".summary.json", summary)
    return summary
