"""Data-side figures: masks/s per bucket, the demo set's size and prepare time, pipeline images/s.

  python experiments/bench_data.py [--size 256] [--batch 16] [--batches 30] [--seconds 3]

Everything is prepared in a fresh temporary data_dir (removed at the end), so
the prepare time is a cold one and ~/tensorflow_datasets is left alone.
Pipeline throughput (train mode: decode, fit, flip, free-form mask, batch,
float32, global jax.Array) is measured on two sources, in-process (prefetch
threads) and with 2 worker processes:
  demo       the demo set's 128² PNG crops, enlarged to size² (decode + resize);
  folder256  256² JPEG crops of the same photographs in an image_folder, stored
             byte for byte as CelebA-HQ / Places2 at 256² are (decode, no resize).
The machine may be shared: the load average is printed before and after.
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
from PIL import Image

from flowfill_jax import datasets, input_pipeline, masks, sharding
from flowfill_jax.datasets import demo, files


def masks_per_second(size: int, seconds: float) -> None:
  for bucket in masks.BUCKETS:
    rng = np.random.default_rng(0)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
      masks.free_form_mask(rng, size, bucket)
      n += 1
    print(f"masks {bucket:>6} at {size}²: {n / (time.perf_counter() - start):7.0f} masks/s "
          "(one thread)")


def demo_set(data_dir: str) -> None:
  start = time.perf_counter()
  train = datasets.load("demo", "train", data_dir=data_dir)
  seconds = time.perf_counter() - start
  test = datasets.load("demo", "test", data_dir=data_dir)
  size = subprocess.run(["du", "-sb", os.path.join(data_dir, "demo")], capture_output=True,
                        text=True, check=True).stdout.split()[0]
  print(f"demo set: {len(train)} train / {len(test)} test crops of 128², "
        f"{int(size) / 2**20:.0f} MiB on disk, prepared in {seconds:.1f} s")


def write_folder(root: str, count: int) -> None:
  """`count` 256² JPEG crops (quality 95) of the demo's photographs."""
  os.makedirs(root, exist_ok=True)
  photos = [Image.fromarray(demo.photo(n)) for n in demo.TRAIN_PHOTOS + demo.TEST_PHOTOS]
  rng = np.random.default_rng(0)
  for i in range(count):
    photo = photos[i % len(photos)]
    w, h = photo.size
    side = int(rng.integers(256, min(w, h) + 1))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    crop = files.resize(photo.crop((x, y, x + side, y + side)), 256, 256)
    crop.save(os.path.join(root, f"{i:04d}.jpg"), quality=95)


def pipeline_rate(config, batches: int) -> float:
  it = input_pipeline.create_iterator(config, sharding.make_mesh(), split="train", seed=0)
  for _ in range(3):  # warm-up: workers start, buffers fill
    next(it)
  start = time.perf_counter()
  for _ in range(batches):
    batch = next(it)
  batch["image"].block_until_ready()
  rate = batches * config.batch_size / (time.perf_counter() - start)
  it.close()
  return rate


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--batches", type=int, default=30)
  parser.add_argument("--seconds", type=float, default=3.0)
  args = parser.parse_args()
  print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
  masks_per_second(args.size, args.seconds)
  data_dir = tempfile.mkdtemp(prefix="bench_data_")
  try:
    demo_set(data_dir)
    folder = os.path.join(data_dir, "folder256")
    write_folder(folder, 200)
    sources = {"demo": ("demo", None), "folder256": ("image_folder", folder)}
    for label, (name, manual_dir) in sources.items():
      for workers in (0, 2):
        config = input_pipeline.default_data_config()
        config.update(name=name, data_dir=data_dir, manual_dir=manual_dir,
                      image_size=args.size, batch_size=args.batch, num_workers=workers)
        rate = pipeline_rate(config, args.batches)
        print(f"pipeline {label:>9} at {args.size}², batch {args.batch}, "
              f"{workers} worker processes: {rate:6.0f} images/s")
  finally:
    shutil.rmtree(data_dir)
  print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
