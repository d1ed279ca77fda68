"""Does stage 1 see the masked image? Figures of a trained run's flow, per split.

    python experiments/probe_condition.py --workdir runs/demo [--splits test test_ood]

For each split (fixed evaluation masks of one bucket) it prints:
- bits/dim of I_gt↓ under the image's own condition (mid-bin dequantisation, the
  validation figure), and the median gap to a shuffled condition (another image's
  masked input): a flow that ignores its condition shows no gap;
- the mean absolute error, in 8-bit levels, of the τ = 0 prior (every latent at its
  prior mean) against I_gt↓ on fully known low-res pixels and on hole pixels (any
  hole pixel inside), beside classical inpainting run at the prior's size on the same
  low-res inputs: OpenCV Telea (when opencv is installed), scikit-image biharmonic,
  and the mean known colour. `--sheet` writes a PNG of inputs, τ = 0 priors,
  Telea and ground truth per row.
"""

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from flowfill_jax import datasets, factory, image_ops, masks, visualize
from flowfill_jax.inference import load_config


def load_split(config, split: str, num: int, bucket: str, seed: int, start: int = 0):
  """[N, S, S, 3] images in [0, 1] (from the `start`-th on) and their fixed evaluation
  masks [N, S, S, 1] (those `flowfill_jax.evaluate` gives the same images)."""
  source = datasets.load(config.data.name, split, data_dir=config.data.data_dir,
                         manual_dir=config.data.manual_dir)
  size = config.data.image_size
  n = max(0, min(num, len(source) - start))
  images = []
  for i in range(start, start + n):
    img = np.asarray(source[i]["image"])
    if img.shape[:2] != (size, size):
      img = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC, reducing_gap=2.0))
    images.append(img.astype(np.float32) / 255.0)
  m = masks.eval_masks(bucket, start + n, size, seed)[start:].astype(np.float32)[..., None]
  return np.stack(images), m


def classical_fills(low_masked: np.ndarray, hole: np.ndarray) -> dict:
  """Classical inpainting of the low-res inputs (uint8-quantised like a saved image)."""
  from skimage.restoration import inpaint_biharmonic
  out = {"biharmonic": np.stack([
      np.clip(inpaint_biharmonic(x, h[..., 0].astype(bool), channel_axis=-1), 0, 1)
      for x, h in zip(low_masked, hole)])}
  try:
    import cv2
    out["telea"] = np.stack([
        cv2.inpaint(np.round(x * 255).astype(np.uint8), h[..., 0].astype(np.uint8), 3,
                    cv2.INPAINT_TELEA).astype(np.float32) / 255.0
        for x, h in zip(low_masked, hole)])
  except ImportError:
    print("  (opencv not installed: no Telea row)")
  known = 1.0 - hole
  mean = (low_masked * known).sum((1, 2), keepdims=True) / np.maximum(
      known.sum((1, 2), keepdims=True), 1.0)
  out["mean colour"] = np.where(hole > 0, mean, low_masked)
  return out


def level_errors(estimate: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> tuple:
  """(MAE on fully known pixels, MAE on hole pixels), in 8-bit levels."""
  err = np.abs(estimate - truth).mean(-1) * 255.0
  h = hole[..., 0] > 0
  return float(err[~h].mean()), float(err[h].mean())


def probe(model, variables, images, mask, batch: int = 50) -> dict:
  bpd_fn = jax.jit(lambda v, x, m, k: model.apply(v, x, m, k))  # mid-bin bits/dim
  sample = jax.jit(lambda v, m, k: model.apply(v, jax.random.key(0), m, k, 0.0,
                                               method=model.sample))
  own, shuffled, priors = [], [], []
  for i in range(0, len(images), batch):
    x, k = jnp.asarray(images[i:i + batch]), jnp.asarray(mask[i:i + batch])
    masked = x * (1 - k)
    own.append(np.asarray(bpd_fn(variables, x, masked, k)))
    # Another image's condition: the batch rolled by one.
    shuffled.append(np.asarray(bpd_fn(variables, x, jnp.roll(masked, 1, 0), jnp.roll(k, 1, 0))))
    priors.append(np.asarray(sample(variables, masked, k)))
  return {"own": np.concatenate(own), "shuffled": np.concatenate(shuffled),
          "prior": np.concatenate(priors)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--splits", nargs="+", default=None,
                      help="default: the run's eval split, then test_ood if the dataset has it")
  parser.add_argument("--num", type=int, default=200, help="images per split")
  parser.add_argument("--bucket", default="random")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--sheet", action="store_true", help="write probe_<split>.png in workdir")
  parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
  args = parser.parse_args()

  config = load_config(args.workdir)
  model = factory.structure_prior(config)
  variables = factory.load_structure_variables(config, args.workdir)
  splits = args.splits or [config.data.eval_split] + (
      ["test_ood"] if config.data.name == "demo" else [])
  p = model.prior_size
  results = {}
  for split in splits:
    images, mask = load_split(config, split, args.num, args.bucket, args.seed)
    out = probe(model, variables, images, mask)
    truth = np.asarray(image_ops.area_downsample(jnp.asarray(images), p))
    hole = np.asarray(image_ops.mask_downsample(jnp.asarray(mask), p))
    low_masked = np.asarray(image_ops.area_downsample(jnp.asarray(images * (1 - mask)), p))
    low_masked = low_masked * (1 - hole)
    rows = {"flow τ=0": out["prior"], **classical_fills(low_masked, hole)}
    res = {"images": len(images), "hole_share_lowres": float(hole.mean()),
           "bits_per_dim": float(out["own"].mean()),
           # Median: with known pixels near-deterministic, a wrong condition can cost +inf.
           "shuffled_gap": float(np.median(out["shuffled"] - out["own"]))}
    for name, est in rows.items():
      res[name] = dict(zip(("known", "hole"), level_errors(est, truth, hole)))
    results[split] = res
    print(f"\n{split}: {len(images)} images, masks '{args.bucket}' (seed {args.seed}), "
          f"prior {p}², {100 * res['hole_share_lowres']:.1f}% of low-res pixels hold a hole")
    print(f"  bits/dim {res['bits_per_dim']:.3f}; shuffled condition "
          f"+{res['shuffled_gap']:.3f} bits/dim (median)")
    print(f"  {'MAE in 8-bit levels':<22} {'known px':>9} {'hole px':>9}")
    for name in rows:
      print(f"  {name:<22} {res[name]['known']:9.2f} {res[name]['hole']:9.2f}")
    if args.sheet:
      n = min(8, len(images))
      cols = [visualize.grey_holes(low_masked, hole), out["prior"],
              rows.get("telea", rows["biharmonic"]), truth]
      path = os.path.join(args.workdir, f"probe_{split}.png")
      visualize.write_png(path, visualize.grid([[c[i] for c in cols] for i in range(n)]))
      print(f"  sheet: {path} (columns: input, flow τ=0, Telea or biharmonic, truth)")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
