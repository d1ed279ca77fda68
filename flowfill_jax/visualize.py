"""Image grids written as PNG (sample sheets, side-by-side comparisons)."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from flowfill_jax import fileio

if TYPE_CHECKING:  # not imported at run time: the CLIs load JAX only after their checks
  import jax

_ArrayT = TypeVar("_ArrayT", np.ndarray, "jax.Array")  # numpy in, numpy out; jax in, jax out


def to_uint8(images: ArrayLike) -> np.ndarray:
  return np.round(np.clip(np.asarray(images, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def grey_holes(image: _ArrayT, mask: _ArrayT) -> _ArrayT:
  """The masked input as the sheets show it: holes (mask 1) mid-grey. numpy or jax arrays."""
  return image * (1 - mask) + 0.5 * mask


def grid(rows: Sequence[Sequence[ArrayLike]], pad: int = 2, size: int | None = None,
         min_size: int = 96, max_size: int = 512) -> np.ndarray:
  """Rows of images (each a sequence of HxWxC arrays) → one uint8 sheet.

  Every image is scaled to the height `size` keeping its aspect ratio (a landscape photo stays
  landscape): by default the largest height among them, at least `min_size` (so 64² priors sit
  beside 256² completions and tiny demo priors stay visible) and at most `max_size` (a sheet of
  eight 4000-pixel photos would be a 100-megapixel preview). Upscaling is nearest-neighbour, so
  the pixels of small priors stay visible; downscaling averages.
  """
  rows = [[np.asarray(img, np.float32) for img in r] for r in rows]
  size = size or min(max_size, max(min_size, max(img.shape[0] for r in rows for img in r)))
  widths = [[max(1, round(size * img.shape[1] / img.shape[0])) for img in r] for r in rows]
  cols = max(len(r) for r in rows)
  col_width = [max(w[j] for w in widths if j < len(w)) for j in range(cols)]
  x0 = np.concatenate([[pad], pad + np.cumsum(np.add(col_width, pad))])
  sheet = np.full((len(rows) * (size + pad) + pad, int(x0[-1]), 3), 255, np.uint8)
  for i, row in enumerate(rows):
    for j, img in enumerate(row):
      if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
      shrink = img.shape[0] > size
      resample = Image.Resampling.BOX if shrink else Image.Resampling.NEAREST
      tile = Image.fromarray(to_uint8(img)).resize((widths[i][j], size), resample)
      y, x = pad + i * (size + pad), int(x0[j])
      sheet[y:y + size, x:x + widths[i][j]] = np.asarray(tile)
  return sheet


def write_png(path: str, image: ArrayLike) -> None:
  """Write atomically: a half-written PNG never appears under `path`."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    image = to_uint8(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  with fileio.atomic_path(path, ".png") as tmp:
    Image.fromarray(image).save(tmp, format="PNG")
