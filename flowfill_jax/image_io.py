"""Reading user images and masks from disk, with errors that name the file."""

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from flowfill_jax.errors import UserError

# Pillow's modes whose pixels are not 8-bit: its own conversion to "RGB" or "L" clips them to
# 255 (a 16-bit photo turns white, a float one black), so they are scaled here by their range.
_WIDE_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _open(path: str, what: str) -> Image.Image:
  """The image at `path` as displayed: loaded, and turned upright by its EXIF orientation
  (a phone's portrait photo is stored sideways; an editor shows it, and draws its mask, upright)."""
  if os.path.isdir(path):
    raise UserError(f"{what} file {path} is a folder, not an image file")
  if not os.path.isfile(path):
    raise UserError(f"{what} file {path} does not exist")
  try:
    img = Image.open(path)
    img.load()
    return ImageOps.exif_transpose(img)
  except Image.DecompressionBombError as e:  # Pillow's guard against huge images
    raise UserError(f"cannot read {what} {path}: too large ({e})") from None
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
    raise UserError(f"cannot read {what} {path}: not a readable image ({e})") from None


def _wide_gray(img: Image.Image, path: str, what: str) -> np.ndarray:
  """A 16/32-bit integer or float grayscale image → float32 HxW in [0, 1].

  16-bit modes are divided by 65535; 32-bit integers by 65535 when they exceed 255 (Pillow
  opens some 16-bit files as "I") and by 255 otherwise; floats are taken as [0, 1], or as
  [0, 255] when they exceed 1.
  """
  values = np.asarray(img, np.float64)
  if not np.isfinite(values).all():
    raise UserError(f"cannot use {what} {path}: it has NaN or infinite pixel values")
  low, high = float(values.min()), float(values.max())
  if img.mode == "F":
    scale = 1.0 if high <= 1.0 else 255.0
  elif img.mode.startswith("I;16"):
    scale = 65535.0
  else:
    scale = 65535.0 if high > 255 else 255.0
  if low < 0 or high > scale:
    raise UserError(f"cannot use {what} {path}: its {img.mode} pixel values span "
                    f"[{low:g}, {high:g}], outside [0, {scale:g}]")
  return (values / scale).astype(np.float32)


def read_image(path: str) -> np.ndarray:
  """Any image (grayscale, RGBA, palette, 16-bit, float, …) → float32 HxWx3 in [0, 1], upright.

  RGBA is composited over white; grayscale is repeated over 3 channels.
  """
  img = _open(path, "image")
  if img.mode in _WIDE_INTEGER_MODES or img.mode == "F":
    return np.repeat(_wide_gray(img, path, "image")[..., None], 3, axis=-1)
  if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    img = Image.alpha_composite(white, rgba)
  return np.asarray(img.convert("RGB"), np.float32) / 255.0


def read_mask(path: str, invert: bool = False) -> np.ndarray:
  """A single-channel mask image → float32 HxW, 1 = hole (white = hole, thresholded at half
  the range; 16-bit and float masks too). A label mask whose integer pixels are only 0 and 1
  (as numpy or a dataset saves them) is read as 1 = hole. With `invert`, white (or 1) = known.
  """
  img = _open(path, "mask")
  if img.mode == "F":
    hole = _wide_gray(img, path, "mask") >= 0.5
  else:
    raw = np.asarray(img if img.mode in _WIDE_INTEGER_MODES else img.convert("L"))
    if raw.max() == 1 and raw.min() >= 0:
      hole = raw == 1
    elif img.mode in _WIDE_INTEGER_MODES:
      hole = _wide_gray(img, path, "mask") >= 0.5
    else:
      hole = raw >= 128
  return (~hole if invert else hole).astype(np.float32)


def read_transparent_hole(path: str) -> np.ndarray | None:
  """The transparent pixels of an image as a mask (float32 HxW, 1 = hole: alpha below half), as
  image editors and other inpainting tools mark a hole; None for an image with no alpha."""
  img = _open(path, "image")
  if img.mode not in ("RGBA", "LA", "PA", "La", "RGBa") and not (
      img.mode == "P" and "transparency" in img.info):
    return None
  return (np.asarray(img.convert("RGBA"))[..., 3] < 128).astype(np.float32)
