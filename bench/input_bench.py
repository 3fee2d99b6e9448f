"""Input pipeline speed: facepars tf.data vs the decode ceiling vs the notebook's loader.

    python bench/input_bench.py [--pairs 400] [--batches 60]

On the shards prepared (once, cached in bench/_work/) from the same large
Kaggle-layout photos as bench/prepare_bench.py, in one run:

  1. the facepars pipeline (file shuffle, interleave, record shuffle, parse and
     decode, batch 32, prefetch) at 256x256, images/s, no model;
  2. the decode ceiling: the same encoded images and masks held in memory,
     decoded by a bare tf.data map with full parallelism, batch 32;
  3. the notebook's loader: a Python generator reading each full-size JPEG and PNG
     with OpenCV, resizing to 256x256, scaling to float and one-hot encoding the
     mask, batch 32, one thread;
  4. the on-device augmentation (every transform on) on batches of 32 at 256x256.

Prints (1)/(2) (target >= 0.8) and (1)/(3) (target >= 25).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from facepars import prepare
from facepars.configs.common import AugmentConfig
from facepars.core.classes import SOURCE_TABLES, TAXONOMIES
from facepars.data import pipeline, schema
from facepars.data.augment import Augmenter

from common import WORK, make_source

BATCH = 32


def prepared_shards(root: str, pairs: int) -> str:
    out = os.path.join(WORK, f"shards_{pairs}")
    if not os.path.exists(os.path.join(out, schema.MANIFEST)):
        prepare.run(prepare.PrepareConfig(output_dir=out, source="kaggle", input_dir=root,
                                          workers=os.cpu_count(), shard_size=32, overwrite=True))
    return out


def rate(batches, count: int, warmup: int = 5) -> float:
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(count):
        batch = next(iterator)
    np.asarray(batch["image"] if isinstance(batch, dict) else batch[0])
    return count * BATCH / (time.perf_counter() - start)


def facepars_pipeline(manifest, batches: int) -> float:
    ds = pipeline.make_dataset(manifest, "train", True,
                               pipeline.InputConfig(global_batch_size=BATCH, seed=0))
    return rate(ds, batches)


def decode_ceiling(manifest, batches: int) -> float:
    images, masks = [], []
    for shard in manifest.shards("train"):
        for record in tf.data.TFRecordDataset(shard.path):
            example = tf.train.Example.FromString(record.numpy()).features.feature
            images.append(example[schema.IMAGE_ENCODED].bytes_list.value[0])
            masks.append(example[schema.MASK_ENCODED].bytes_list.value[0])

    def decode(image, mask):
        return {"image": tf.ensure_shape(tf.io.decode_jpeg(image, channels=3), (256, 256, 3)),
                "mask": tf.io.decode_png(mask, channels=1)[..., 0]}

    ds = (tf.data.Dataset.from_tensor_slices((images, masks)).repeat()
          .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
          .batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    return rate(ds, batches)


def seed_loader(root: str, batches: int) -> float:
    import cv2
    lut, _ = SOURCE_TABLES["kaggle"].lookup_table(TAXONOMIES["seed8"])
    base = os.path.join(root, "content/All_data/train")
    names = sorted(os.listdir(f"{base}/image"))

    def generator():
        while True:
            for start in range(0, len(names) - BATCH + 1, BATCH):
                xs, ys = [], []
                for name in names[start:start + BATCH]:
                    image = cv2.cvtColor(cv2.imread(f"{base}/image/{name}"), cv2.COLOR_BGR2RGB)
                    mask = cv2.imread(f"{base}/seg/{os.path.splitext(name)[0]}.png", 0)
                    xs.append(cv2.resize(image, (256, 256)).astype(np.float32) / 255.0)
                    mask = lut[cv2.resize(mask, (256, 256), interpolation=cv2.INTER_NEAREST)]
                    ys.append(np.eye(8, dtype=np.float32)[mask])
                yield np.stack(xs), np.stack(ys)

    return rate(generator(), batches, warmup=1)


def augmentation(batches: int) -> float:
    aug = Augmenter(AugmentConfig(), TAXONOMIES["seed8"].table)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((BATCH, 256, 256, 3), dtype=np.float32))
    masks = tf.constant(rng.integers(0, 8, (BATCH, 256, 256), dtype=np.uint8))
    step = tf.function(lambda seed: aug(images, masks, seed))
    step(tf.constant([0, 0]))
    start = time.perf_counter()
    for i in range(batches):
        out = step(tf.constant([0, i]))
    out[0].numpy()
    return batches * BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--batches", type=int, default=60)
    args = parser.parse_args()
    root = make_source(os.path.join(WORK, f"kaggle_{args.pairs}"), args.pairs)
    manifest = schema.Manifest.load(prepared_shards(root, args.pairs))
    ceiling = decode_ceiling(manifest, args.batches)
    ours = facepars_pipeline(manifest, args.batches)
    seed = seed_loader(root, max(2, args.batches // 15))
    aug = augmentation(max(3, args.batches // 6))
    print(f"1. facepars pipeline (256x256, batch {BATCH}): {ours:8.1f} images/s")
    print(f"2. decode ceiling (in-memory, bare map):   {ceiling:8.1f} images/s")
    print(f"3. seed loader (cv2 generator, 1 thread):  {seed:8.1f} images/s")
    print(f"4. augmentation on this CPU (batch {BATCH}):   {aug:8.1f} images/s")
    print(f"(1)/(2) = {ours / ceiling:.2f}  (target >= 0.8)")
    print(f"(1)/(3) = {ours / seed:.1f}  (target >= 25)")


if __name__ == "__main__":
    main()
