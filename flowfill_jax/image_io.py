"""Reading user images and masks from disk, with errors that name the file."""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from flowfill_jax.errors import UserError


def _open(path: str, what: str) -> Image.Image:
  if not os.path.isfile(path):
    raise UserError(f"{what} file {path} does not exist")
  try:
    img = Image.open(path)
    img.load()
    return img
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise UserError(f"cannot read {what} {path}: not a readable image ({e})") from None


def read_image(path: str) -> np.ndarray:
  """Any 8-bit image (grayscale, RGBA, palette, …) → float32 HxWx3 in [0, 1].

  RGBA is composited over white; grayscale is repeated over 3 channels.
  """
  img = _open(path, "image")
  if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    img = Image.alpha_composite(white, rgba)
  return np.asarray(img.convert("RGB"), np.float32) / 255.0


def read_mask(path: str, invert: bool = False) -> np.ndarray:
  """A single-channel mask image → float32 HxW, 1 = hole (white = hole, thresholded at 50%).

  With `invert`, white = known.
  """
  img = _open(path, "mask")
  gray = np.asarray(img.convert("L"), np.float32) / 255.0
  hole = gray >= 0.5
  return (~hole if invert else hole).astype(np.float32)
