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
         min_size: int = 96) -> np.ndarray:
  """Rows of images (each a sequence of HxWxC arrays) → one uint8 sheet.

  Images are resized (nearest) to `size`, by default the largest height among them
  and at least `min_size`, so 64² priors sit beside 256² completions and tiny
  demo priors stay visible.
  """
  rows = [[np.asarray(img, np.float32) for img in r] for r in rows]
  size = size or max(min_size, max(img.shape[0] for r in rows for img in r))
  cols = max(len(r) for r in rows)
  sheet = np.ones((len(rows) * (size + pad) + pad, cols * (size + pad) + pad, 3), np.uint8) * 255
  for i, row in enumerate(rows):
    for j, img in enumerate(row):
      if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
      tile = Image.fromarray(to_uint8(img)).resize((size, size), Image.Resampling.NEAREST)
      y, x = pad + i * (size + pad), pad + j * (size + pad)
      sheet[y:y + size, x:x + size] = np.asarray(tile)
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
