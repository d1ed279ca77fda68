"""Data-side speed: free-form masks/s per bucket and input-pipeline images/s, at 256².

  python experiments/bench_data.py [--dataset demo] [--batch 16] [--batches 20]

The demo set stores 128² crops, so at 256² every image is also upsampled: a
pessimistic stand-in for CelebA-HQ / Places2, which are stored at 256².
"""

import argparse
import os
import time

import numpy as np

from flowfill_jax import datasets, input_pipeline, masks, sharding
from flowfill_jax.config_base import base_config


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dataset", default="demo")
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
  args = parser.parse_args()

  print(f"cores: {os.cpu_count()}")
  for bucket in masks.BUCKETS:
    rng = np.random.default_rng(0)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 3.0:
      masks.free_form_mask(rng, args.size, bucket)
      n += 1
    print(f"masks {bucket:>6} at {args.size}²: {n / (time.perf_counter() - start):7.1f} masks/s")

  train = datasets.load(args.dataset, "train")
  test = datasets.load(args.dataset, "test")
  print(f"{args.dataset}: {len(train)} train / {len(test)} test images")
  config = base_config().data
  config.name, config.image_size, config.batch_size = args.dataset, args.size, args.batch
  mesh = sharding.make_mesh()
  for workers in args.workers:
    config.num_workers = workers
    stream = input_pipeline.create_iterator(config, mesh, split="train", seed=0)
    next(stream)
    start = time.perf_counter()
    for _ in range(args.batches):
      batch = next(stream)
    batch["image"].block_until_ready()
    rate = args.batches * args.batch / (time.perf_counter() - start)
    print(f"pipeline {args.size}² batch {args.batch}, {workers} worker processes: "
          f"{rate:7.1f} images/s")


if __name__ == "__main__":
  main()
