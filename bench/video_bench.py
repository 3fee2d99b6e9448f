"""Video: what tracking and smoothing do to the labels, and how fast a video parses.

    python bench/video_bench.py --run_dir=demo_output/model --export_dir=demo_output/export

Quality, on synthetic videos with exact masks and known motion
(facepars.data.synthetic.moving_faces: faces drifting, turning and jittering
over a still background, 1-3 faces, 640x480): per-frame face-class mIoU against
the truth (one confusion matrix over every frame), and temporal consistency: for
each face and each pair of frames, frame t's labels and frame t+1's, each moved
back into the face's own frame by its known motion, compared as face-class mIoU
(pooled over pairs). The truth's own consistency (nearest-neighbour resampling
is not exact) is the ceiling. Three ways to parse:

  alone     each frame as a photo: the detector on every frame, predict_faces
  tracked   facepars.inference.tracking without smoothing (points from the parse)
  smoothed  facepars.inference.tracking as predict runs it on videos (one-euro, blending)

each with two detectors: MTCNN (it misses some drawn faces; its recall is
printed) and the faces' exact points with 2 px of noise (a detector that finds
every face and jitters as detectors do).

Speed: frames/s of ``predict`` on a video (decode, parse, overlay video, label
PNGs) with one face and with three (scikit-image's astronaut moving, a real
face MTCNN finds), per backend, against the photo path on the same frames
(detector on every frame, no outputs) as the baseline measured in the same run.
Memory: peak RSS of the same job on 150 and on 600 frames.

A strip of four frames of the first video around its face (rows: the frame,
the truth, alone, smoothed) goes to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image

from facepars.core import imaging, visualize
from facepars.core.classes import SOURCE_TABLES, TAXONOMIES
from facepars.data import synthetic
from facepars.faces import detection
from facepars.inference import tracking, video
from facepars.inference.predictor import Predictor
from facepars.training.metrics import scores_from_confusion

from common import PackageMTCNN, astronaut_sprite, confusion

HEIGHT, WIDTH = 480, 640


class Consistency:
    """Pooled per-class IoU of consecutive frames' labels, each moved into the face's frame."""

    def __init__(self, n):
        self.inter, self.union = np.zeros(n), np.zeros(n)

    def add(self, labels_a, labels_b, frame_a, frame_b):
        for ma, mb, side in zip(frame_a.matrices, frame_b.matrices, frame_b.sides):
            a = imaging.warp(labels_a, imaging.invert(ma), side, nearest=True, fill=0)
            b = imaging.warp(labels_b, imaging.invert(mb), side, nearest=True, fill=0)
            for c in range(1, len(self.inter)):
                self.inter[c] += ((a == c) & (b == c)).sum()
                self.union[c] += ((a == c) | (b == c)).sum()

    def score(self):
        present = self.union > 0
        return float((self.inter[present] / self.union[present]).mean())


class NoisyExactPoints:
    """A detector that finds every face at its exact points plus Gaussian noise."""

    def __init__(self, sigma, seed=0):
        self.sigma, self.rng, self.points = sigma, np.random.default_rng(seed), []

    def __call__(self, frame):
        return [detection.from_landmarks(p + self.rng.normal(0, self.sigma, p.shape))
                for p in self.points]


WAYS = ("alone", "tracked", "smoothed")


def quality(predictor, detector, args):
    """(face mIoU per way, consistency per way and of the truth, detector recall, strip)."""
    lut, _ = SOURCE_TABLES["synthetic"].lookup_table(TAXONOMIES[predictor.table.name])
    n = predictor.table.num_classes
    totals = {w: np.zeros((n, n), np.int64) for w in WAYS}
    steady = {w: Consistency(n) for w in WAYS + ("truth",)}
    found = faces = 0
    strip = []
    for v in range(args.videos):
        trackers = {"tracked": tracking.FaceTracker(predictor, detector, 30.0, smooth=False),
                    "smoothed": tracking.FaceTracker(predictor, detector, 30.0)}
        previous = None
        for t, frame in enumerate(synthetic.moving_faces(args.seed + v, args.frames, HEIGHT,
                                                         WIDTH, num_faces=1 + v % 3)):
            truth = lut[frame.mask]
            if isinstance(detector, NoisyExactPoints):
                detector.points = frame.landmarks
            alone = detection.find(detector, frame.image)
            found += sum(any(detection.contains(f, p[:2].mean(0)) for f in alone)
                         for p in frame.landmarks)
            faces += len(frame.landmarks)
            labels = {"alone": predictor.predict_faces(frame.image, alone).labels, "truth": truth}
            for way, tracker in trackers.items():
                labels[way] = tracker.parse(frame.image).labels
            for way in WAYS:
                totals[way] += confusion(truth, labels[way], n)
            if previous is not None:
                for way in steady:
                    steady[way].add(previous[0][way], labels[way], previous[1], frame)
            previous = (labels, frame)
            if v == 0 and t % (args.frames // 4) == 0 and len(strip) < 4:
                strip.append((frame.image, labels))
        for tracker in trackers.values():
            tracker.close()
        print(f"  video {v + 1}/{args.videos} ({1 + v % 3} faces) done", flush=True)
    miou = {w: scores_from_confusion(c, predictor.table)["iou/mean_face"]
            for w, c in totals.items()}
    return miou, {w: c.score() for w, c in steady.items()}, found / max(faces, 1), strip


def write_video(path, frames, fps=30.0):
    import imageio_ffmpeg
    writer = imageio_ffmpeg.write_frames(path, (WIDTH, HEIGHT), fps=fps, codec="libx264",
                                         quality=8, macro_block_size=1)
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame.image))
    writer.close()


def speed(model_paths, clips, detector, package):
    """frames/s per backend and clip: predict's video job, and the photo path's
    baselines: the detector on every frame, then ``predict_faces``, with facepars's
    MTCNN and with the mtcnn package's pipeline (the path before the graph one)."""
    rows = []
    for backend, path in model_paths.items():
        predictor = Predictor.load(path)
        for faces, clip in clips.items():
            _, frames = video.read_frames(clip)
            frames = list(frames)[:30]
            with tempfile.TemporaryDirectory() as out:
                video.parse_video(predictor, detector, clip, out, "warm.mp4")  # traces, caches
                start = time.perf_counter()
                summary = video.parse_video(predictor, detector, clip, out, "clip.mp4")
                job = summary["frames"] / (time.perf_counter() - start)
            tracked = sum(len(f) for f in summary["faces"]) / summary["frames"]
            paths = {}
            for name, finder in (("graph", detector), ("package", package)):
                predictor.predict_faces(frames[0], detection.find(finder, frames[0]))  # warm
                start = time.perf_counter()
                for frame in frames:
                    predictor.predict_faces(frame, detection.find(finder, frame))
                paths[name] = len(frames) / (time.perf_counter() - start)
            rows.append((backend, faces, tracked, job, paths))
            print(f"  {backend:18s} {faces} face(s): {job:5.1f} frames/s; photo path "
                  f"{paths['graph']:4.1f} (package's MTCNN {paths['package']:4.1f}: job "
                  f"x{job / paths['package']:.1f}, photo path x"
                  f"{paths['graph'] / paths['package']:.1f}); {tracked:.2f} faces tracked "
                  "per frame", flush=True)
    return rows


def peak_memory(model_path, clip):
    """Peak RSS (MiB) of a fresh process running predict's video job on ``clip``."""
    code = ("import resource, sys, tempfile; from facepars import detection, video; "
            "from facepars.inference.predictor import Predictor; "
            "p = Predictor.load(sys.argv[1]); d = detection.default_detector(); "
            "video.parse_video(p, d, sys.argv[2], tempfile.mkdtemp(), 'c.mp4'); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, model_path, clip], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", default="demo_output/model")
    parser.add_argument("--export_dir", default="demo_output/export")
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("docs", "images", "video_strip.png"))
    args = parser.parse_args()

    saved_model = os.path.join(args.export_dir, "saved_model")
    predictor = Predictor.load(saved_model)
    mtcnn = detection.default_detector()
    detectors = {"noisy exact points": NoisyExactPoints(2.0)}
    if mtcnn is not None:
        detectors["MTCNN"] = mtcnn
    strip = None
    print(f"quality: {args.videos} synthetic videos of {args.frames} frames at "
          f"{WIDTH}x{HEIGHT}, 1-3 faces")
    for name, detector in detectors.items():
        miou, steady, recall, frames = quality(predictor, detector, args)
        strip = strip or frames
        print(f"{name} (recall {recall:.1%}); truth's own consistency {steady['truth']:.4f}")
        print(f"  {'':10s}{'face mIoU':>10s}{'consistency':>13s}")
        for way in WAYS:
            print(f"  {way:10s}{miou[way]:10.4f}{steady[way]:13.4f}")
        print(f"  smoothing: consistency {steady['smoothed'] - steady['tracked']:+.4f}, "
              f"mIoU {miou['smoothed'] - miou['tracked']:+.4f} (vs tracked); "
              f"consistency {steady['smoothed'] - steady['alone']:+.4f}, "
              f"mIoU {miou['smoothed'] - miou['alone']:+.4f} (vs alone)")

    table = predictor.table
    truth_face = np.nonzero(np.any([labels["truth"] > 0 for _, labels in strip], 0))
    y0, y1 = max(truth_face[0].min() - 20, 0), min(truth_face[0].max() + 20, HEIGHT)
    x0, x1 = max(truth_face[1].min() - 20, 0), min(truth_face[1].max() + 20, WIDTH)
    rows = [np.concatenate([image[y0:y1, x0:x1] for image, _ in strip], 1)]
    for way in ("truth", "alone", "smoothed"):
        rows.append(np.concatenate([visualize.colorize(labels[way][y0:y1, x0:x1], table)
                                    for _, labels in strip], 1))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)
    print(f"picture (rows: frame | truth | alone | smoothed; 4 frames of video 1): {args.out}")

    if mtcnn is None:
        return
    work = tempfile.mkdtemp(prefix="video-bench-")
    sprite = astronaut_sprite()
    clips = {}
    for faces in (1, 3):
        clips[faces] = os.path.join(work, f"astronaut{faces}.mp4")
        write_video(clips[faces], synthetic.moving_faces(0, 150, HEIGHT, WIDTH, face_width=0.2,
                                                         sprites=[sprite] * faces))
    models = {"Keras (run dir)": args.run_dir, "SavedModel": saved_model}
    for name in ("model_float32.tflite", "model_int8.tflite", "model.onnx"):
        if os.path.exists(os.path.join(args.export_dir, name)):
            models[name] = os.path.join(args.export_dir, name)
    print(f"speed: 150 frames at {WIDTH}x{HEIGHT}, the astronaut's face moving, MTCNN "
          "in the graph (facepars.faces.mtcnn_graph)")
    speed(models, clips, mtcnn, PackageMTCNN())

    long_clip = os.path.join(work, "astronaut_long.mp4")
    write_video(long_clip, synthetic.moving_faces(0, 600, HEIGHT, WIDTH, face_width=0.2,
                                                  sprites=[sprite]))
    short, long = peak_memory(saved_model, clips[1]), peak_memory(saved_model, long_clip)
    print(f"memory: peak RSS {short:.0f} MiB for 150 frames, {long:.0f} MiB for 600 "
          f"(x{long / short:.2f})")


if __name__ == "__main__":
    main()
