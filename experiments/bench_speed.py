"""Inference speed, the paper's Table 3: both stages at 256², on whatever JAX sees.

The paper-size two-stage model (`StructurePrior()` + `TextureGenerator()` defaults,
through `TwoStage.complete`), randomly initialised (ActNorm's data-dependent init
on random images: the speed does not depend on the weights). Rows:

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

  python experiments/bench_speed.py [--batch 8 16] [--num 8] [--seconds 5]
"""

import argparse
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import benchlib
from flowfill_jax.models.flow import StructurePrior
from flowfill_jax.models.generator import TextureGenerator
from flowfill_jax.pipeline import TwoStage

try:  # the package's free-form masks, where that module exists
  from flowfill_jax import masks as ff_masks
except ImportError:
  ff_masks = None

# label → (bucket name in flowfill_jax.masks, hole-ratio range)
BUCKETS = {"20-40%": ("20-40", (0.2, 0.4)), "40-60%": ("40-60", (0.4, 0.6)),
           "random 20-60%": ("random", (0.2, 0.6))}


def _disc_brush(mask, y0, x0, y1, x1, radius):
  """Paint a thick segment (discs along it) into a [H, W] mask."""
  h, w = mask.shape
  n = max(2, int(math.hypot(y1 - y0, x1 - x0) / max(radius / 2, 1)) + 1)
  yy, xx = np.mgrid[:h, :w]
  for t in np.linspace(0.0, 1.0, n):
    cy, cx = y0 + t * (y1 - y0), x0 + t * (x1 - x0)
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = 1.0


def random_mask(size, lo, hi, rng, max_tries=100):
  """A free-form hole mask [size, size, 1] (1 = hole): random brush strokes and boxes
  added until the hole ratio reaches a target drawn from U(lo, hi), rejected unless
  the final ratio lies in [lo, hi]."""
  for _ in range(max_tries):
    target = rng.uniform(lo, hi)
    mask = np.zeros((size, size), np.float32)
    while mask.mean() < target:
      if rng.uniform() < 0.3:  # a box
        bh, bw = rng.integers(size // 8, size // 3, size=2)
        y, x = rng.integers(0, size - bh), rng.integers(0, size - bw)
        mask[y:y + bh, x:x + bw] = 1.0
      else:  # a stroke of a few segments
        y, x = rng.uniform(0, size, size=2)
        radius = rng.uniform(size / 40, size / 12)
        for _ in range(rng.integers(2, 6)):
          angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(size / 8, size / 3)
          y1 = float(np.clip(y + length * np.sin(angle), 0, size - 1))
          x1 = float(np.clip(x + length * np.cos(angle), 0, size - 1))
          _disc_brush(mask, y, x, y1, x1, radius)
          y, x = y1, x1
    if lo <= mask.mean() <= hi:
      return mask[..., None]
  raise RuntimeError(f"no mask in [{lo}, {hi}] after {max_tries} tries")


def make_masks(batch, size, bucket, rng):
  """[batch, size, size, 1] float32 masks (1 = hole) of a bucket: `flowfill_jax.masks`'s
  free-form masks if that module exists, else this script's own strokes and boxes."""
  name, (lo, hi) = BUCKETS[bucket]
  if ff_masks is not None:
    one = lambda: ff_masks.free_form_mask(rng, size, name)[..., None].astype(np.float32)
  else:
    one = lambda: random_mask(size, lo, hi, rng)
  return np.stack([one() for _ in range(batch)])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, nargs="+", default=[8, 16],
                      help="batch sizes of the batched rows (one sample per input)")
  parser.add_argument("--num", type=int, default=8, help="samples per input, batch-1 row")
  parser.add_argument("--image-size", type=int, default=256)
  parser.add_argument("--seconds", type=float, default=5.0, help="timing time per row")
  parser.add_argument("--temperature", type=float, default=0.8)
  args = parser.parse_args()

  size = args.image_size
  load_start = os.getloadavg()[0]
  print(f"device: {benchlib.device_name()}; load average {load_start:.2f}; masks from "
        f"{'flowfill_jax.masks' if ff_masks is not None else 'this script (strokes, boxes)'}")

  structure, generator = StructurePrior(), TextureGenerator()
  model = TwoStage(structure, generator)
  rng = np.random.default_rng(0)
  init_images = jnp.asarray(rng.uniform(size=(2, size, size, 3)), jnp.float32)
  init_masks = jnp.asarray(make_masks(2, size, "random 20-60%", rng))
  init_masked = init_images * (1 - init_masks)
  key = jax.random.key(0)
  start = time.perf_counter()
  structure_vars = jax.jit(structure.init)(key, init_images, init_masked, init_masks)
  priors_init = jnp.asarray(rng.uniform(size=(2, structure.prior_size, structure.prior_size, 3)),
                            jnp.float32)
  generator_params = jax.jit(generator.init)(key, priors_init, init_masked,
                                             init_masks)["params"]
  init_s = time.perf_counter() - start
  count = lambda tree: sum(math.prod(p.shape) for p in jax.tree.leaves(tree))
  print(f"paper-size models, random init ({init_s:.0f} s): stage 1 (E + f) "
        f"{count(structure_vars['params']) / 1e6:.2f}M parameters, prior "
        f"{structure.prior_size}², L={structure.levels}, K={structure.steps}; stage 2 (G) "
        f"{count(generator_params) / 1e6:.2f}M parameters; images {size}²; "
        f"temperature {args.temperature}")

  def inputs(batch, bucket="random 20-60%"):
    images = rng.uniform(size=(batch, size, size, 3)).astype(np.float32)
    masks = make_masks(batch, size, bucket, rng)
    return jnp.asarray(images * (1 - masks)), jnp.asarray(masks)

  def two_stage(num):
    def fn(structure_vars, generator_params, masked, masks, key):
      return model.complete(structure_vars, generator_params, masked, masks, key, num=num,
                            temperature=args.temperature)
    return fn

  def stage1(structure_vars, masked, masks, key):
    return model.priors(structure_vars, masked, masks, key, 1, args.temperature)

  def stage2(generator_params, priors, masked, masks):
    return model.texture(generator_params, priors, masked, masks)

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
    print(f"  {work}, {batch}×{num}, {mask_label}: {secs / n_images:.3f} s/image "
          f"(compile {compile_s:.1f} s; matmul {matmul / 1e9:.0f} GFLOP/s)", flush=True)

  # Both stages, batch 1, one sample, per mask bucket (same compiled executable).
  for label in BUCKETS:
    masked, masks = inputs(1, label)
    ratio = float(masks.mean())
    row("both stages", two_stage(1), (structure_vars, generator_params, masked, masks, key),
        1, 1, f"{label} ({ratio:.0%})")
  # Both stages batched.
  for batch in args.batch:
    masked, masks = inputs(batch)
    row("both stages", two_stage(1), (structure_vars, generator_params, masked, masks, key),
        batch, 1, "random 20-60%")
  masked, masks = inputs(1)
  row("both stages", two_stage(args.num), (structure_vars, generator_params, masked, masks, key),
      1, args.num, "random 20-60%")
  # Each stage alone: stage 1 at batch 1 and the largest batch, stage 2 at batch 1.
  for batch in sorted({1, max(args.batch)}):
    masked, masks = inputs(batch)
    row("stage 1 (E + f⁻¹)", stage1, (structure_vars, masked, masks, key), batch, 1,
        "random 20-60%")
  masked, masks = inputs(1)
  priors = jnp.asarray(rng.uniform(size=(1, structure.prior_size, structure.prior_size, 3)),
                       jnp.float32)
  row("stage 2 (G)", stage2, (generator_params, priors, masked, masks), 1, 1, "random 20-60%")

  print(f"\ndevice: {benchlib.device_name()}; load average {load_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end; \"matmul\" is a 2048² float32 matmul timed just "
        f"before each row, \"of matmul\" the row's FLOP/s over it")
  table = []
  for r in rows:
    per_image = r["secs"] / r["images"]
    table.append((r["work"], r["batch"], r["masks"], f"{r['compile']:.1f}",
                  f"{per_image:.3f}", f"{1 / per_image:.2f}",
                  f"{r['flops'] / r['images'] / 1e9:.1f}", f"{r['flops'] / r['secs'] / 1e9:.0f}",
                  f"{r['matmul'] / 1e9:.0f}", f"{r['flops'] / r['secs'] / r['matmul']:.2f}",
                  f"{r['load']:.1f}"))
  benchlib.print_table(["work", "batch × samples", "masks (hole ratio)", "compile s",
                        "s / image", "images / s", "GFLOP / image", "GFLOP/s",
                        "matmul GFLOP/s", "of matmul", "load"], table)

if __name__ == "__main__":
  main()
