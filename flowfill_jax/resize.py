"""Resizing on the host (numpy/PIL), one documented choice per job, used everywhere.

- **image, any size → model size, and back**: bicubic with antialiasing (PIL's, box-reduced
  first when shrinking by 2× or more: `reducing_gap=2.0`). The datasets are stored and
  cropped with it, so a user's image reaches the model as the training images did.
- **mask → model size**: a pixel is a hole if any hole pixel of the original falls in it
  (shrinking never turns part of a hole into known pixels that are not); nearest when
  enlarging.
- **inside the model** (jax, `image_ops`): images to the prior's size by area averaging,
  masks by any-hole, priors up by bicubic.

uint8 images stay uint8; float images are resized per channel in float (no 8-bit rounding).
"""

import numpy as np
from PIL import Image


def image(x: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """HxWxC image (uint8, or float in [0, 1]) → `size` (int: square, or (height, width))."""
  h, w = (size, size) if isinstance(size, int) else size
  x = np.asarray(x)
  if x.shape[:2] == (h, w):
    return x
  if x.dtype == np.uint8:
    return np.asarray(Image.fromarray(x).resize((w, h), Image.Resampling.BICUBIC, reducing_gap=2.0))
  channels = [np.asarray(Image.fromarray(x[..., c].astype(np.float32), mode="F")
                         .resize((w, h), Image.Resampling.BICUBIC, reducing_gap=2.0))
              for c in range(x.shape[-1])]
  return np.clip(np.stack(channels, -1), 0.0, 1.0).astype(x.dtype)


def square(x: np.ndarray, size: int) -> np.ndarray:
  """Centre crop to a square, then `image` to size×size (how datasets store photos)."""
  h, w = x.shape[:2]
  s = min(h, w)
  y0, x0 = (h - s) // 2, (w - s) // 2
  return image(x[y0:y0 + s, x0:x0 + s], size)


def mask(m: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
  """HxW (or HxWx1) mask, hole > 0.5 → bool hole mask at `size`: any-hole when shrinking."""
  h, w = (size, size) if isinstance(size, int) else size
  m = np.asarray(m)
  squeeze = m.ndim == 3
  hole = (m[..., 0] if squeeze else m) > 0.5
  if hole.shape != (h, w):
    pil = Image.fromarray(hole.astype(np.float32), mode="F")
    if h <= hole.shape[0] and w <= hole.shape[1]:  # box filter: any hole pixel counts
      hole = np.asarray(pil.resize((w, h), Image.Resampling.BOX)) > 1e-6
    else:
      hole = np.asarray(pil.resize((w, h), Image.Resampling.NEAREST)) > 0.5
  return hole[..., None] if squeeze else hole
