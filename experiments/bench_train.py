"""Training speed and memory at the paper size, to size a GPU run: images/s and XLA's memory of
each stage's jitted train step per batch size, and the parameter counts.

The paper's model (`configs/celeba.py`: 256² images, 64² prior, L=4, K=10, G with 64 base
features) and, with `--config improved`, `configs/celeba.py:improved` (this project's measured
improvements, the low-res condition projected to 32 channels included), on random images and
free-form masks, one device; stage 2 with a frozen, randomly initialised stage 1. Compile time
apart; each step timed after a warm-up. Memory is the compiled step's own (XLA's memory analysis:
arguments + outputs + temporaries, minus donated aliases), the same on every backend; a GPU also
reports its allocator's peak.

  python experiments/bench_train.py [--batch 1 2 4] [--config paper improved] [--dtype float32]
"""

import argparse
import functools

import benchlib
import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax import masks
from flowfill_jax.config_base import base_config, measured_improvements
from flowfill_jax.structure_stage import StructureStage
from flowfill_jax.texture_stage import TextureStage

KEY = functools.partial(jax.random.key, impl="rbg")


def batch_of(batch, size, rng):
  images = rng.uniform(size=(batch, size, size, 3)).astype(np.float32)
  hole = np.stack([masks.free_form_mask(rng, size)[..., None] for _ in range(batch)])
  return {"image": jnp.asarray(images), "mask": jnp.asarray(hole.astype(np.float32))}


def step_memory(exe) -> str:
  """GiB a compiled step holds at its peak, by XLA's own accounting."""
  m = exe.memory_analysis()
  if m is None:
    return "n/a"
  total = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
           - m.alias_size_in_bytes)
  return f"{total / 2**30:.2f}"


def millions(tree) -> str:
  return f"{sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree)) / 1e6:.1f}M"


def time_stage(name, state, train_step, batch, extra, seconds):
  """(row cells) of one stage's train step at one batch size."""
  exe, compile_s, flops = benchlib.compiled(train_step, state, batch, KEY(1), *extra)
  secs = benchlib.time_call(exe, state, batch, KEY(1), *extra, min_seconds=seconds)
  n = batch["image"].shape[0]
  return [name, n, f"{compile_s:.1f}", f"{secs / n * 1e3:.0f}", f"{n / secs:.2f}",
                 f"{flops / n / 1e9:.1f}", step_memory(exe)]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4])
  parser.add_argument("--config", nargs="+", default=["paper", "improved"],
                      choices=["paper", "improved"])
  parser.add_argument("--stages", nargs="+", default=["1", "2"], choices=["1", "2"])
  parser.add_argument("--image-size", type=int, default=256)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--seconds", type=float, default=5.0)
  args = parser.parse_args()
  print(f"device: {benchlib.device_name()}; {args.dtype} convolutions")
  print(f"float32 matmul: {benchlib.matmul_flops_per_second() / 1e9:.0f} GFLOP/s")
  rows = []
  for name in args.config:
    config = base_config()  # configs/celeba.py's model: the paper, or with the improvements
    if name == "improved":
      measured_improvements(config)
    config.data.image_size = args.image_size
    config.model.compute_dtype = args.dtype
    stage1, stage2 = StructureStage(config), TextureStage(config, workdir="")
    for b in args.batch:
      batch = batch_of(b, args.image_size, np.random.default_rng(0))
      state = jax.jit(stage1.init)(KEY(0), batch)  # stage 2's frozen stage 1 too
      t_state = jax.jit(stage2.init)(KEY(0), batch) if "2" in args.stages else None
      if b == args.batch[0]:
        print(f"{name}: E + f {millions(state.params)}"
              + (f", G {millions(t_state.g_params)}, D {millions(t_state.d_params)}"
                 if t_state else "") + " parameters", flush=True)
      if "1" in args.stages:
        rows.append(time_stage(f"{name}: stage 1 (E + f, NLL)", state, stage1.train_step, batch,
                               (), args.seconds))
        print("  ", rows[-1], flush=True)
      if t_state is not None:
        frozen = {"params": state.params, "constants": state.constants}
        rows.append(time_stage(f"{name}: stage 2 (G + D)", t_state, stage2.train_step, batch,
                               (frozen,), args.seconds))
        print("  ", rows[-1], flush=True)
  benchlib.print_table(["train step", "batch", "compile s", "ms / image", "images / s",
                        "GFLOP / image", "XLA memory GiB"], rows)
  print(f"allocator's peak device memory: {benchlib.peak_memory()}")


if __name__ == "__main__":
  main()
