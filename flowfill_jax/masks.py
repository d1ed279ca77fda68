"""Irregular masks (1 = hole): free-form strokes and boxes, hole-ratio buckets, fixed eval sets.

Training draws free-form masks on the fly in the DeepFill v2 / MAT manner:
brush strokes (a polyline of 4-12 vertices turning by about 2π/5, round
joints, 12-40 px wide at 256²) and now and then a box, added until the hole
ratio reaches a target drawn uniformly in the bucket; a shape that would
overshoot the bucket is undone and another drawn. Everything is drawn with PIL
at the target size (no resizing), thousands of masks a second.

Evaluation uses a fixed, seeded set per bucket, written once as PNGs (white =
hole) and read back, so every method is scored on identical masks. A folder of
external masks (e.g. the NVIDIA irregular mask set) can replace it:
`load_mask_folder` sorts them into buckets by their measured hole ratio.
"""

import math
import os
import tempfile
import zlib

import numpy as np
from PIL import Image, ImageDraw

from flowfill_jax.datasets.errors import DataNotFoundError, DatasetError
from flowfill_jax.datasets.files import default_data_dir, list_images, log, open_image

BUCKETS = {"20-40": (0.2, 0.4), "40-60": (0.4, 0.6), "random": (0.2, 0.6)}
# Part of the evaluation-set folder name: a changed generator writes a new set.
GENERATOR_VERSION = 1
BOX_PROBABILITY = 0.15
MAX_VERTICES = 12
MAX_SHAPES = 200  # shapes (kept or undone) before a mask starts over
MAX_RESTARTS = 100


def ratio_range(bucket) -> tuple[float, float]:
  """(lo, hi) hole fractions of a bucket: a BUCKETS name, 'lo-hi' in percent, or a pair."""
  if isinstance(bucket, str) and bucket in BUCKETS:
    return BUCKETS[bucket]
  try:
    if isinstance(bucket, str):
      lo, hi = (float(v) / 100.0 for v in bucket.split("-"))
    else:
      lo, hi = (float(v) for v in bucket)
  except (TypeError, ValueError):
    raise DatasetError(f"mask bucket {bucket!r}: expected one of {', '.join(BUCKETS)}, "
                       "'lo-hi' in percent (e.g. '10-30') or a (lo, hi) pair of "
                       "fractions") from None
  if not 0.0 <= lo < hi <= 1.0:
    raise DatasetError(f"mask bucket {bucket!r}: need 0 <= lo < hi <= 100 %")
  return lo, hi


def bucket_name(bucket) -> str:
  """The bucket as a file-name part: '20-40', 'random', '10-30'."""
  if isinstance(bucket, str) and bucket in BUCKETS:
    return bucket
  lo, hi = ratio_range(bucket)
  return f"{100 * lo:g}-{100 * hi:g}"


def _stroke(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int) -> None:
  """A brush stroke: a zig-zag polyline (direction alternating by about 2π/5), round joints.

  Random numbers are drawn in two calls and the vertices walked in plain Python:
  per-vertex numpy calls would cost more than the drawing.
  """
  u = rng.random(4 + MAX_VERTICES).tolist()
  lengths = rng.normal(1.0, 0.5, MAX_VERTICES).clip(0.0, 2.0).tolist()
  n = 4 + int(u[0] * (MAX_VERTICES - 3))
  width = max(1, round((12 + 28 * u[1]) * size / 256))
  turn = (2 + (2 * u[2] - 1) * 2 / 3) * math.pi / 5
  angle, step = u[3] * 2 * math.pi, math.sqrt(2) * size / 8  # mean segment: diagonal / 8
  x, y = rng.uniform(0, size, 2).tolist()
  points = [(x, y)]
  for i in range(n):
    angle += (turn if i % 2 else -turn) + 0.6 * (u[4 + i] - 0.5)
    x = min(max(x + lengths[i] * step * math.cos(angle), 0.0), size - 1.0)
    y = min(max(y + lengths[i] * step * math.sin(angle), 0.0), size - 1.0)
    points.append((x, y))
  draw.line(points, fill=255, width=width)
  r = width / 2
  for x, y in points:  # round joints and ends (PIL's joint="curve" is 5x slower)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def _box(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int) -> None:
  w, h, u, v = rng.random(4).tolist()
  w, h = size * (0.1 + 0.4 * w), size * (0.1 + 0.4 * h)
  x, y = u * (size - w / 2) - w / 4, v * (size - h / 2) - h / 4
  draw.rectangle((x, y, x + w, y + h), fill=255)


def _holes(img: Image.Image) -> int:
  return int(np.count_nonzero(np.asarray(img)))


def free_form_mask(rng: np.random.Generator, size: int, bucket="random") -> np.ndarray:
  """A size×size uint8 mask (1 = hole) whose hole ratio lies in the bucket."""
  lo, hi = ratio_range(bucket)
  area = size * size
  for _ in range(MAX_RESTARTS):
    target = rng.uniform(lo, hi) * area
    img = Image.new("L", (size, size), 0)
    for _ in range(MAX_SHAPES):
      candidate = img.copy()
      shape = _box if rng.random() < BOX_PROBABILITY else _stroke
      shape(ImageDraw.Draw(candidate), rng, size)
      holes = _holes(candidate)
      if holes > hi * area:
        continue  # would overshoot the bucket: undo, draw another shape
      img = candidate
      if holes >= target:
        return (np.asarray(img) > 0).astype(np.uint8)
  raise DatasetError(f"mask bucket {bucket!r}: no free-form mask with a hole ratio in "
                     f"[{lo:g}, {hi:g}] at {size}x{size} after {MAX_RESTARTS} tries")


def eval_mask_dir(bucket, size: int, seed: int = 0, cache_dir: str | None = None) -> str:
  """Where the fixed evaluation set of a bucket lives (under the data dir by default)."""
  root = cache_dir or os.path.join(default_data_dir(), "flowfill_eval_masks")
  return os.path.join(root, f"{bucket_name(bucket)}_{size}px_seed{seed}_v{GENERATOR_VERSION}")


def _eval_rng(bucket, index: int, seed: int) -> np.random.Generator:
  """Mask `index` of a set depends on (seed, bucket, index) only: any subset, any order."""
  return np.random.default_rng([seed, zlib.crc32(bucket_name(bucket).encode()), index])


def _write_png(path: str, mask: np.ndarray) -> None:
  """Atomic: a reader in another process never sees half a file."""
  fd, tmp = tempfile.mkstemp(suffix=".png", dir=os.path.dirname(path))
  os.close(fd)
  Image.fromarray(mask.astype(np.uint8) * 255).save(tmp, format="PNG")
  os.replace(tmp, path)


def write_eval_masks(out_dir: str, bucket, num: int, size: int, seed: int = 0) -> list[str]:
  """Write masks 0…num-1 of a bucket's evaluation set as PNGs (white = hole).

  The same (bucket, size, seed) gives byte-identical files.
  """
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for index in range(num):
    paths.append(os.path.join(out_dir, f"{index:05d}.png"))
    _write_png(paths[-1], free_form_mask(_eval_rng(bucket, index, seed), size, bucket))
  return paths


def read_mask_png(path: str) -> np.ndarray:
  return (np.asarray(Image.open(path).convert("L")) > 127).astype(np.uint8)


def eval_mask(bucket, index: int, size: int, seed: int = 0,
              cache_dir: str | None = None) -> np.ndarray:
  """Mask `index` of a bucket's fixed evaluation set, uint8 HxW (its PNG written on first use)."""
  directory = eval_mask_dir(bucket, size, seed, cache_dir)
  path = os.path.join(directory, f"{index:05d}.png")
  if not os.path.exists(path):
    os.makedirs(directory, exist_ok=True)
    _write_png(path, free_form_mask(_eval_rng(bucket, index, seed), size, bucket))
  return read_mask_png(path)


def eval_masks(bucket, num: int, size: int, seed: int = 0,
               cache_dir: str | None = None) -> np.ndarray:
  """The first `num` masks of a bucket's fixed evaluation set, uint8 [num, size, size]."""
  return np.stack([eval_mask(bucket, i, size, seed, cache_dir) for i in range(num)])


def _read_external(path: str, invert: bool, size: int | None) -> np.ndarray | None:
  img = open_image(path)
  if img is None:
    return None
  grey = img.convert("L")
  if size is not None:  # area-average, then threshold: no aliasing of thin strokes
    grey = grey.resize((size, size), Image.BOX)
  hole = np.asarray(grey) > 127
  return (~hole if invert else hole).astype(np.uint8)


def load_mask_folder(path: str, invert: bool = False, size: int | None = None,
                     buckets=tuple(BUCKETS)) -> dict[str, list[np.ndarray]]:
  """External masks (white = hole; `invert` for white = known), sorted into buckets.

  Each mask goes into every bucket whose range holds its measured hole ratio
  (at `size`² when given). Unreadable files are skipped with a warning.
  """
  if not os.path.isdir(path):
    raise DataNotFoundError(f"mask folder {path} does not exist")
  files = list_images(path)
  found = {bucket_name(b): [] for b in buckets}
  ranges = {bucket_name(b): ratio_range(b) for b in buckets}
  readable = 0
  for f in files:
    mask = _read_external(f, invert, size)
    if mask is None:
      continue
    readable += 1
    for name, (lo, hi) in ranges.items():
      if lo <= mask.mean() <= hi:
        found[name].append(mask)
  if readable < len(files):
    log.warning("mask folder %s: skipped %d unreadable file(s) of %d", path,
                len(files) - readable, len(files))
  if not readable:
    raise DataNotFoundError(f"no readable mask image (png, jpg, bmp, …) in {path}")
  return found
