"""Write a video of synthetic faces moving, with exact per-frame masks if asked.

    python data_prep/write_synthetic_video.py OUT.mp4 [--frames 90] [--faces 2] [--masks]

Faces drift, turn and jitter over a still background
(facepars.data.synthetic.moving_faces), for trying ``facepars.predict`` on a
video on a machine without one. ``--masks`` also writes OUT.masks/000000.png ...
in the Kaggle set's 18 ids (docs/data.md), the truth to score the labels against.
Needs the video extra (imageio-ffmpeg).
"""

from __future__ import annotations

import argparse
import os

import imageio_ffmpeg
import numpy as np
from PIL import Image

from facepars.core.classes import translate_ids
from facepars.data import synthetic


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--faces", type=int, default=1)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--masks", action="store_true")
    args = parser.parse_args()
    lut = translate_ids("synthetic", "kaggle")
    masks = os.path.splitext(args.out)[0] + ".masks"
    if args.masks:
        os.makedirs(masks, exist_ok=True)
    writer = imageio_ffmpeg.write_frames(args.out, (args.width, args.height), fps=args.fps,
                                         codec="libx264", quality=8, macro_block_size=1)
    writer.send(None)
    for t, frame in enumerate(synthetic.moving_faces(args.seed, args.frames, args.height,
                                                     args.width, args.faces)):
        writer.send(np.ascontiguousarray(frame.image))
        if args.masks:
            Image.fromarray(lut[frame.mask]).save(os.path.join(masks, f"{t:06d}.png"))
    writer.close()
    print(f"wrote {args.frames} frames of {args.faces} moving face(s) to {args.out}")


if __name__ == "__main__":
    main()
