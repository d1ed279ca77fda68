"""What does stage 2 add? The two-stage completion beside its own input and classical fills.

    python experiments/probe_texture.py --workdir runs/demo [--num 200] [--temperatures 0.8]

On the first `--num` images of the run's eval split under the fixed evaluation masks of
`--bucket` (those of `flowfill_jax.evaluate`), per sampling temperature, it prints PSNR,
LPIPS to the ground truth and LPIPS diversity (`--lpips-net`, alex by default; pairs of
`--samples` samples) of:
- "prior↑": stage 1's prior as G receives it (clipped, known low-res pixels pasted),
  bicubically upsampled and composited with the known pixels: G's starting point;
- "prior↑ + fill detail": the same plus the high frequencies of the full-resolution
  smooth fill (fill − its own low-res view brought up the same way);
- "two-stage": G's completion of the same priors (when the run has a stage-2 checkpoint);
- "truth↓↑": the ground truth at the prior's size, upsampled the same way: what a perfect
  prior would give G to start from (the cost of the prior's resolution alone);
- "smooth fill": `image_ops.smooth_fill` at full resolution (stage 1's base with
  `hole_base="smooth"`), and "smooth fill↓↑", the same through the prior's size;
- Telea (when OpenCV is installed) and biharmonic at full resolution.
No FID (Inception on CPU is the slow part of `flowfill_jax.evaluate`): a fast loop for
comparing stage-2 settings. `--sheet` writes probe_texture.png in the workdir.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax import baselines, factory, image_ops, metrics, visualize
from flowfill_jax.errors import UserError
from flowfill_jax.inference import load_config
from flowfill_jax.models.generator import composite, smooth_fill_detail

sys.path.insert(0, os.path.dirname(__file__))
from probe_condition import load_split  # noqa: E402


def scores(out, image, lpips_params, net: str = "alex") -> dict:
  """out [B, N, H, W, 3] → per-image PSNR, LPIPS-GT (means over samples), diversity."""
  b, n = out.shape[:2]
  flat = out.reshape((b * n,) + out.shape[2:])
  truth = jnp.repeat(image, n, axis=0)
  res = {"psnr": metrics.psnr(flat, truth).reshape(b, n).mean(1),
         "lpips_gt": metrics.lpips.lpips(flat, truth, net, lpips_params).reshape(b, n).mean(1)}
  if n >= 2:
    res["diversity"] = metrics.diversity(out, net, min(5, n * (n - 1) // 2), lpips_params)
  return {k: np.asarray(v) for k, v in res.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--split", default=None, help="default: the run's eval split")
  parser.add_argument("--num", type=int, default=200)
  parser.add_argument("--start", type=int, default=0,
                      help="first image: tune on one range of the split, check on another")
  parser.add_argument("--bucket", default="20-40")
  parser.add_argument("--dataset", default=None,
                      help="default: the run's (e.g. photos, to probe a demo-trained model there)")
  parser.add_argument("--samples", type=int, default=4)
  parser.add_argument("--temperatures", type=float, nargs="+", default=None,
                      help="default: the run's τ")
  parser.add_argument("--batch", type=int, default=25)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--lpips-net", choices=["alex", "vgg"], default="alex")
  parser.add_argument("--sheet", action="store_true")
  args = parser.parse_args()

  config = load_config(args.workdir)
  two = factory.two_stage(config)
  structure_vars = factory.load_structure_variables(config, args.workdir)
  try:
    g_params = factory.load_generator_params(config, args.workdir)
  except UserError:
    g_params = None  # stage 1 alone: the prior↑ rows only
  lpips_params = metrics.lpips.load_lpips(args.lpips_net)
  split = args.split or config.data.eval_split
  if args.dataset:
    config.data.name = args.dataset
  images, mask = load_split(config, split, args.num, args.bucket, args.seed, args.start)
  temps = args.temperatures or [config.sample.temperature]
  size = images.shape[1]

  @jax.jit
  def run(image, mask, key, temperature):
    masked = image * (1 - mask)
    priors, _ = two.priors(structure_vars, masked, mask, key, args.samples, temperature)
    masked_rep, mask_rep = (jnp.repeat(x, args.samples, axis=0) for x in (masked, mask))
    shown = two.generator_prior(priors, masked_rep, mask_rep)
    up = image_ops.prior_upsample(shown, (size, size))
    outs = {"prior↑": composite(jnp.clip(up, 0, 1), masked_rep, mask_rep)}
    # The prior's low frequencies on the full-resolution fill's high ones (G's base).
    fill = jnp.repeat(two.generator.smooth_fill(masked, mask), args.samples, axis=0)
    detail = up + smooth_fill_detail(fill, shown.shape[1:3])
    outs["prior↑ + fill detail"] = composite(jnp.clip(detail, 0, 1), masked_rep, mask_rep)
    if g_params is not None:
      outs["two-stage"] = two.texture(g_params, priors, masked, mask)
    b = image.shape[0]
    return {k: v.reshape((b, args.samples) + v.shape[1:]) for k, v in outs.items()}

  def down_up(full, image, mask):
    low = image_ops.area_downsample(full, two.structure.prior_size)
    up = image_ops.prior_upsample(low, image.shape[1:3])
    return composite(jnp.clip(up, 0, 1), image * (1 - mask), mask)[:, None]

  @jax.jit
  def references(image, mask):
    fill = two.generator.smooth_fill(image * (1 - mask), mask)
    return {"truth↓↑": down_up(image, image, mask), "smooth fill": fill[:, None],
            "smooth fill↓↑": down_up(fill, image, mask)}

  rows, examples = {}, {}
  start = time.perf_counter()
  for i in range(0, len(images), args.batch):
    x, m = jnp.asarray(images[i:i + args.batch]), jnp.asarray(mask[i:i + args.batch])
    for name, out in references(x, m).items():
      for k, v in scores(out, x, lpips_params, args.lpips_net).items():
        rows.setdefault(name, {}).setdefault(k, []).append(v)
  for t in temps:
    for i in range(0, len(images), args.batch):
      x, m = jnp.asarray(images[i:i + args.batch]), jnp.asarray(mask[i:i + args.batch])
      outs = run(x, m, jax.random.fold_in(jax.random.key(args.seed), i), t)
      for name, out in outs.items():
        key = f"{name} τ={t:g}"
        for k, v in scores(out, x, lpips_params, args.lpips_net).items():
          rows.setdefault(key, {}).setdefault(k, []).append(v)
        if i == 0:
          examples[key] = np.asarray(out)
  for name in baselines.NAMES:
    if baselines.unavailable(name):
      continue
    out = baselines.inpaint(name, images, mask)[:, None]
    for i in range(0, len(images), args.batch):
      for k, v in scores(jnp.asarray(out[i:i + args.batch]), jnp.asarray(images[i:i + args.batch]),
                         lpips_params, args.lpips_net).items():
        rows.setdefault(name, {}).setdefault(k, []).append(v)
    examples[name] = out[:args.batch]

  print(f"{split}: {len(images)} images from #{args.start}, masks {args.bucket} (seed {args.seed}), "
        f"{args.samples} samples, {100 * mask.mean():.1f}% holes; {time.perf_counter() - start:.0f} s")
  print("| method | PSNR↑ | LPIPS-GT↓ | diversity↑ |\n|---|---:|---:|---:|")
  for name, r in rows.items():
    m = {k: float(np.concatenate(v).mean()) for k, v in r.items()}
    div = f"{m['diversity']:.4f}" if "diversity" in m else "–"
    print(f"| {name} | {m['psnr']:.2f} | {m['lpips_gt']:.4f} | {div} |")
  if args.sheet:
    n = min(8, args.batch, len(images))
    cols = []
    for out in examples.values():
      cols += [out[:, j] for j in range(min(2, out.shape[1]))]
    sheet_rows = [[visualize.grey_holes(images[i], mask[i])] + [c[i] for c in cols] + [images[i]]
                  for i in range(n)]
    path = os.path.join(args.workdir, "probe_texture.png")
    visualize.write_png(path, visualize.grid(sheet_rows))
    print(f"sheet: {path} (columns: input, " + ", ".join(
        f"{k} ×{min(2, v.shape[1])}" for k, v in examples.items()) + ", truth)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
