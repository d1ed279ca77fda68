"""Inference speed, the paper's Table 3: both stages at 256², on whatever JAX sees.

The paper-size two-stage model (`StructurePrior()` + `TextureGenerator()` defaults,
through `TwoStage.sample_completions`), randomly initialised (ActNorm's data-dependent init
on random images: the speed does not depend on the weights), or with `--workdir` a
trained run at its own size (e.g. the demo run). Rows:

  * both stages, batch 1, one sample, per mask bucket (20-40%, 40-60%, random
    20-60%; the cost does not depend on the hole ratio, the paper reports per bucket);
  * both stages batched: each `--batch` with one sample per input, and batch 1 with
    `--num` samples in one call;
  * stage 1 alone (E + flow inverse: sampling the 64² prior) and stage 2 alone (G on
    given priors).

Each row: compile time (separately), seconds per completed image, images/s, FLOPs
per image from XLA's cost analysis (2 per multiply-add; stage 1 unrolls its scans
by default, so the count covers every flow step), the achieved FLOP/s, and that as a
fraction of a 2048² float32 matmul timed just before that row. Every
array (variables, images, masks, key) is a jit argument. The machine may be shared:
the load average is printed with every row.

  python experiments/bench_speed.py [--batch 8 16] [--num 8] [--seconds 5] [--workdir RUN]
"""

import argparse
import math
import os
import time

import benchlib
import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax import masks
from flowfill_jax.models.flow import StructurePrior
from flowfill_jax.models.generator import TextureGenerator
from flowfill_jax.pipeline import TwoStage

# label → bucket name in flowfill_jax.masks
BUCKETS = {"20-40%": "20-40", "40-60%": "40-60", "random 20-60%": "random"}


def make_masks(batch, size, bucket, rng):
  """[batch, size, size, 1] float32 free-form masks (1 = hole) of a bucket."""
  return np.stack([masks.free_form_mask(rng, size, BUCKETS[bucket])[..., None]
                   for _ in range(batch)]).astype(np.float32)


def paper_size_model(size, rng, dtype=None):
  """The paper-size stages, randomly initialised (ActNorm's data-dependent init on noise);
  `dtype` the convolutions' (E and G), as `config.model.compute_dtype` sets it."""
  structure, generator = StructurePrior(encoder_dtype=dtype), TextureGenerator(dtype=dtype)
  images = jnp.asarray(rng.uniform(size=(2, size, size, 3)), jnp.float32)
  hole = jnp.asarray(make_masks(2, size, "random 20-60%", rng))
  key = jax.random.key(0)
  structure_vars = jax.jit(structure.init)(key, images, images * (1 - hole), hole)
  priors = jnp.asarray(rng.uniform(size=(2, structure.prior_size, structure.prior_size, 3)),
                       jnp.float32)
  generator_params = jax.jit(generator.init)(key, priors, images * (1 - hole), hole)["params"]
  return TwoStage(structure, generator), structure_vars, generator_params


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, nargs="+", default=[8, 16],
                      help="batch sizes of the batched rows (one sample per input)")
  parser.add_argument("--num", type=int, default=8, help="samples per input, batch-1 row")
  parser.add_argument("--image-size", type=int, default=256, help="paper-size model's images")
  parser.add_argument("--workdir", help="time a trained run (its config and weights) instead "
                      "of the randomly initialised paper-size model")
  parser.add_argument("--seconds", type=float, default=5.0, help="timing time per row")
  parser.add_argument("--temperature", type=float, default=0.8)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                      help="E's and G's convolutions (config.model.compute_dtype)")
  args = parser.parse_args()

  load_start = os.getloadavg()[0]
  print(f"device: {benchlib.device_name()}; load average {load_start:.2f}")
  rng = np.random.default_rng(0)
  start = time.perf_counter()
  if args.workdir:  # a trained run: its own sizes and weights
    from flowfill_jax.inference import Inpainter
    trained = Inpainter.from_workdir(args.workdir)
    model, size = trained.two_stage, trained.size
    structure_vars, generator_params = trained.structure_vars, trained.generator_params
    what = f"the run {args.workdir} (steps {trained.checkpoint_steps})"
  else:
    size = args.image_size
    dtype = None if args.dtype == "float32" else jnp.bfloat16
    model, structure_vars, generator_params = paper_size_model(size, rng, dtype)
    what = f"paper-size models, random init, {args.dtype} convolutions"
  init_s = time.perf_counter() - start
  structure = model.structure
  count = lambda tree: sum(math.prod(p.shape) for p in jax.tree.leaves(tree))
  print(f"{what} ({init_s:.0f} s): stage 1 (E + f) "
        f"{count(structure_vars['params']) / 1e6:.2f}M parameters, prior "
        f"{structure.prior_size}², L={structure.levels}, K={structure.steps}; stage 2 (G) "
        f"{count(generator_params) / 1e6:.2f}M parameters; images {size}²; "
        f"temperature {args.temperature}")
  key = jax.random.key(0)

  def inputs(batch, bucket="random 20-60%"):
    images = rng.uniform(size=(batch, size, size, 3)).astype(np.float32)
    hole = make_masks(batch, size, bucket, rng)
    return jnp.asarray(images * (1 - hole)), jnp.asarray(hole)

  def two_stage(num):
    def fn(structure_vars, generator_params, masked, hole, key):
      return model.sample_completions(structure_vars, generator_params, masked, hole, key, num=num,
                            temperature=args.temperature)
    return fn

  def stage1(structure_vars, masked, hole, key):
    return model.priors(structure_vars, masked, hole, key, 1, args.temperature)

  def stage2(generator_params, priors, masked, hole):
    return model.texture(generator_params, priors, masked, hole)

  rows, cache = [], {}

  def row(work, fn, fn_args, batch, num, mask_label):
    """Compile (once per work and shape), time next to a matmul, and append one table row."""
    cache_key = (work, batch, num)
    if cache_key not in cache:
      cache[cache_key] = benchlib.compiled(fn, *fn_args)
    exe, compile_s, flops = cache[cache_key]
    n_images = batch * num
    matmul = benchlib.matmul_flops_per_second()
    # Calls of several seconds (batched rows): one warm-up and two timed calls.
    secs = benchlib.time_call(exe, *fn_args, min_seconds=args.seconds,
                              min_iters=2 if n_images >= 8 else 3)
    rows.append(dict(work=work, batch=f"{batch}×{num}", masks=mask_label,
                     compile=compile_s, secs=secs, images=n_images, flops=flops,
                     matmul=matmul, load=os.getloadavg()[0]))
    print(f"  {work}, {batch}×{num}, {mask_label}: {1e3 * secs / n_images:.1f} ms/image "
          f"(compile {compile_s:.1f} s; matmul {matmul / 1e9:.0f} GFLOP/s)", flush=True)

  # Both stages, batch 1, one sample, per mask bucket (same compiled executable).
  for label in BUCKETS:
    masked, hole = inputs(1, label)
    ratio = float(hole.mean())
    row("both stages", two_stage(1), (structure_vars, generator_params, masked, hole, key),
        1, 1, f"{label} ({ratio:.0%})")
  # Both stages batched.
  for batch in args.batch:
    masked, hole = inputs(batch)
    row("both stages", two_stage(1), (structure_vars, generator_params, masked, hole, key),
        batch, 1, "random 20-60%")
  masked, hole = inputs(1)
  row("both stages", two_stage(args.num), (structure_vars, generator_params, masked, hole, key),
      1, args.num, "random 20-60%")
  # Each stage alone: stage 1 at batch 1 and the largest batch, stage 2 at batch 1.
  for batch in sorted({1, max(args.batch)}):
    masked, hole = inputs(batch)
    row("stage 1 (E + f⁻¹)", stage1, (structure_vars, masked, hole, key), batch, 1,
        "random 20-60%")
  masked, hole = inputs(1)
  priors = jnp.asarray(rng.uniform(size=(1, structure.prior_size, structure.prior_size, 3)),
                       jnp.float32)
  row("stage 2 (G)", stage2, (generator_params, priors, masked, hole), 1, 1, "random 20-60%")

  print(f"\ndevice: {benchlib.device_name()}; load average {load_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end; \"matmul\" is a 2048² float32 matmul timed just "
        f"before each row, \"of matmul\" the row's FLOP/s over it")
  table = []
  for r in rows:
    per_image = r["secs"] / r["images"]
    table.append((r["work"], r["batch"], r["masks"], f"{r['compile']:.1f}",
                  f"{1e3 * per_image:.1f}", f"{1 / per_image:.2f}",
                  f"{r['flops'] / r['images'] / 1e9:.3g}", f"{r['flops'] / r['secs'] / 1e9:.0f}",
                  f"{r['matmul'] / 1e9:.0f}", f"{r['flops'] / r['secs'] / r['matmul']:.2f}",
                  f"{r['load']:.1f}"))
  benchlib.print_table(["work", "batch × samples", "masks (hole ratio)", "compile s",
                        "ms / image", "images / s", "GFLOP / image", "GFLOP/s",
                        "matmul GFLOP/s", "of matmul", "load"], table)
  print(f"peak device memory: {benchlib.peak_memory()}")

if __name__ == "__main__":
  main()
