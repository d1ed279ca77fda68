"""Training speed at the paper size: images/s of each stage's jitted train step, and peak memory.

The paper's configs (`configs/celeba.py` sizes: 256² images, 64² prior, L=4, K=10, G with 64
base features) on random images and free-form masks, one device; stage 2 with a frozen, randomly
initialised stage 1. Compile time apart; each step timed after a warm-up.

  python experiments/bench_train.py [--batch 16] [--dtype float32 bfloat16] [--seconds 5]
"""

import argparse
import functools

import benchlib
import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax import masks
from flowfill_jax.config_base import base_config
from flowfill_jax.structure_stage import StructureStage
from flowfill_jax.texture_stage import TextureStage

KEY = functools.partial(jax.random.key, impl="rbg")


def batch_of(batch, size, rng):
  images = rng.uniform(size=(batch, size, size, 3)).astype(np.float32)
  hole = np.stack([masks.free_form_mask(rng, size)[..., None] for _ in range(batch)])
  return {"image": jnp.asarray(images), "mask": jnp.asarray(hole.astype(np.float32))}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--image-size", type=int, default=256)
  parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"],
                      choices=["float32", "bfloat16"])
  parser.add_argument("--seconds", type=float, default=5.0)
  args = parser.parse_args()
  print(f"device: {benchlib.device_name()}")
  rng = np.random.default_rng(0)
  batch = batch_of(args.batch, args.image_size, rng)
  rows = []
  for dtype in args.dtype:
    config = base_config()
    config.data.image_size = args.image_size
    config.model.compute_dtype = dtype
    stage1 = StructureStage(config)
    state = jax.jit(stage1.init)(KEY(0), batch)
    exe, compile_s, _ = benchlib.compiled(stage1.train_step, state, batch, KEY(1))
    secs = benchlib.time_call(exe, state, batch, KEY(1), min_seconds=args.seconds)
    rows.append(("stage 1 (E + f, NLL)", dtype, args.batch, f"{compile_s:.1f}",
                 f"{args.batch / secs:.1f}"))
    print(f"  {rows[-1]}", flush=True)
    frozen = {"params": state.params, "constants": state.constants}
    stage2 = TextureStage(config, workdir="")
    t_state = jax.jit(stage2.init)(KEY(2), batch)
    exe, compile_s, _ = benchlib.compiled(stage2.train_step, t_state, batch, KEY(3), frozen)
    secs = benchlib.time_call(exe, t_state, batch, KEY(3), frozen, min_seconds=args.seconds)
    rows.append(("stage 2 (G + D)", dtype, args.batch, f"{compile_s:.1f}",
                 f"{args.batch / secs:.1f}"))
    print(f"  {rows[-1]}", flush=True)
  benchlib.print_table(["train step", "convolutions", "batch", "compile s", "images / s"], rows)
  print(f"peak device memory: {benchlib.peak_memory()}")


if __name__ == "__main__":
  main()
