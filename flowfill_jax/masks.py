"""Irregular masks (1 = hole): free-form strokes and boxes, hole-ratio buckets, fixed eval sets.

Training draws free-form masks on the fly (DeepFill v2 / MAT style: random
thick brush strokes plus a few boxes), rejection-sampled until the hole ratio
falls in the bucket. Evaluation uses a fixed, seeded set per bucket written as
PNGs (white = hole), so every method is scored on identical masks; a folder of
external masks (e.g. the NVIDIA irregular mask set) can replace it.
"""

import glob
import math
import os

import numpy as np
from PIL import Image, ImageDraw

from flowfill_jax import fileio, resize

BUCKETS = {"20-40": (0.2, 0.4), "40-60": (0.4, 0.6), "random": (0.2, 0.6)}
# Bumped whenever `free_form_mask` draws differently: cached evaluation masks are keyed by it,
# so a changed generator never silently reuses masks drawn by the old one.
GENERATOR_VERSION = 1


def ratio_range(bucket: str) -> tuple[float, float]:
  """A bucket name ('20-40', '40-60', 'random') or any 'lo-hi' in percent."""
  if bucket in BUCKETS:
    return BUCKETS[bucket]
  try:
    lo, hi = (float(v) / 100.0 for v in bucket.split("-"))
  except ValueError:
    raise ValueError(f"mask bucket {bucket!r}: expected one of {sorted(BUCKETS)} or 'lo-hi' "
                     "in percent, e.g. '10-30'") from None
  if not 0.0 <= lo < hi <= 1.0:
    raise ValueError(f"mask bucket {bucket!r}: need 0 <= lo < hi <= 100")
  return lo, hi


def _draw(rng: np.random.Generator, size: int, target: float) -> np.ndarray:
  """One free-form mask drawn until its hole ratio reaches about `target`."""
  img = Image.new("L", (size, size), 0)
  draw = ImageDraw.Draw(img)
  scale = size / 256.0
  for _ in range(64):
    if rng.random() < 0.25:  # a box
      w, h = rng.integers(int(30 * scale) + 1, int(110 * scale) + 2, size=2)
      x, y = rng.integers(-w // 2, size - w // 2), rng.integers(-h // 2, size - h // 2)
      draw.rectangle([int(x), int(y), int(x + w), int(y + h)], fill=255)
    else:  # a brush stroke of a few segments
      width = int(rng.integers(int(12 * scale) + 1, int(40 * scale) + 2))
      x, y = rng.uniform(0, size, size=2)
      points = [(x, y)]
      angle = rng.uniform(0, 2 * math.pi)
      for _ in range(int(rng.integers(2, 7))):
        angle += rng.uniform(-1.2, 1.2)
        length = rng.uniform(20, 70) * scale
        x = float(np.clip(x + length * math.cos(angle), 0, size - 1))
        y = float(np.clip(y + length * math.sin(angle), 0, size - 1))
        points.append((x, y))
      draw.line(points, fill=255, width=width, joint="curve")
      r = width // 2
      for px, py in points:
        draw.ellipse([px - r, py - r, px + r, py + r], fill=255)
    if (np.asarray(img) > 0).mean() >= target:
      break
  return (np.asarray(img) > 0).astype(np.uint8)


def free_form_mask(rng: np.random.Generator, size: int, bucket: str = "random",
                   max_tries: int = 100) -> np.ndarray:
  """A size×size uint8 mask (1 = hole) whose hole ratio lies in the bucket."""
  lo, hi = ratio_range(bucket)
  for _ in range(max_tries):
    mask = _draw(rng, size, rng.uniform(lo, hi))
    if lo <= mask.mean() <= hi:
      return mask
  raise RuntimeError(f"no free-form mask in {bucket} after {max_tries} tries at {size}px")


def mask_for_example(seed: int, index: int, size: int, bucket: str) -> np.ndarray:
  """The mask of example `index` of a stream: a pure function of (seed, index)."""
  return free_form_mask(np.random.default_rng([seed, index, 7]), size, bucket)


def write_eval_masks(out_dir: str, bucket: str, num: int, size: int, seed: int = 0) -> list[str]:
  """`num` fixed evaluation masks as PNGs (white = hole); same seed → byte-identical files."""
  paths = []
  for i in range(num):
    path = _eval_mask_path(out_dir, bucket, i)
    if not os.path.exists(path):
      _write_one(out_dir, bucket, i, size, seed)
    paths.append(path)
  return paths


def _write_one(out_dir: str, bucket: str, index: int, size: int, seed: int) -> None:
  mask = free_form_mask(np.random.default_rng([seed, index, 11]), size, bucket)
  with fileio.atomic_path(_eval_mask_path(out_dir, bucket, index), ".png") as tmp:
    Image.fromarray(mask * 255).save(tmp, format="PNG", optimize=False)


def default_cache_dir() -> str:
  """`$FLOWFILL_CACHE_DIR`, else ~/.cache/flowfill_jax (fixed evaluation masks live here)."""
  return os.environ.get("FLOWFILL_CACHE_DIR", os.path.expanduser("~/.cache/flowfill_jax"))


def eval_mask_dir(size: int, seed: int) -> str:
  """Where a fixed evaluation set is cached: keyed by generator version, size and seed."""
  return os.path.join(default_cache_dir(), "eval_masks",
                      f"v{GENERATOR_VERSION}_{size}px_seed{seed}")


def _eval_mask_path(out_dir: str, bucket: str, index: int) -> str:
  return os.path.join(out_dir, f"{bucket}_{index:05d}.png")


def read_eval_mask(out_dir: str, bucket: str, index: int, size: int, seed: int) -> np.ndarray:
  """Mask `index` of a bucket's fixed evaluation set (its PNG written on first use)."""
  path = _eval_mask_path(out_dir, bucket, index)
  if not os.path.exists(path):
    _write_one(out_dir, bucket, index, size, seed)
  return (np.asarray(Image.open(path)) > 127).astype(np.uint8)


def eval_masks(bucket: str, num: int, size: int, seed: int = 0,
               cache_dir: str | None = None) -> np.ndarray:
  """The fixed evaluation set of a bucket as [num, size, size] uint8 (written on first use)."""
  cache_dir = cache_dir or eval_mask_dir(size, seed)
  return np.stack([read_eval_mask(cache_dir, bucket, i, size, seed) for i in range(num)])


def load_mask_folder(path: str, invert: bool = False, size: int | None = None,
                     buckets: tuple[str, ...] = tuple(BUCKETS)) -> dict:
  """External masks sorted into buckets by measured hole ratio: {bucket: [size², …]}.

  `buckets`: names of `BUCKETS` or any "lo-hi" in percent (`ratio_range`).

  `invert`: the files' white means known (the NVIDIA set's own convention is
  white = hole here after its usual inversion; check yours).
  """
  files = sorted(f for ext in ("png", "jpg", "jpeg", "bmp")
                 for f in glob.glob(os.path.join(path, f"*.{ext}")))
  if not files:
    raise FileNotFoundError(f"no mask images (png/jpg/bmp) in {path}")
  ranges = {name: ratio_range(name) for name in buckets}
  out = {name: [] for name in buckets}
  for f in files:
    white = np.asarray(Image.open(f).convert("L")) > 127
    hole = ~white if invert else white
    mask = (resize.mask(hole, size) if size else hole).astype(np.uint8)
    for name, (lo, hi) in ranges.items():
      if lo <= mask.mean() <= hi:
        out[name].append(mask)
  return out
