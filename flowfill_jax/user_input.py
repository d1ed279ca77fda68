"""Checks of what a user asks for (temperatures, masks, image arrays), shared by the API, the
CLIs and the web demo (numpy only, so a CLI can check its flags before JAX starts)."""

import math

import numpy as np
from numpy.typing import ArrayLike

from flowfill_jax.errors import UserError

# Sampling temperatures a user may ask for: 0 draws the most likely prior; far above 1 the
# flow's samples leave the data range. The web demo's slider, the CLIs and the API share them.
MAX_TEMPERATURE = 2.0


def check_temperature(temperature: float | None, name: str = "temperature") -> None:
  """A clear error for a temperature outside [0, MAX_TEMPERATURE] (None: the model's)."""
  if temperature is not None and not (math.isfinite(temperature)
                                      and 0.0 <= temperature <= MAX_TEMPERATURE):
    raise UserError(f"{name} must be a number in [0, {MAX_TEMPERATURE:g}] (0: the most likely "
                    f"prior), got {temperature}")


def check_hole(mask: ArrayLike, name: str = "the mask",
               hint: str = "1 = hole; invert the mask if 1 means known") -> None:
  """A clear error for a mask (1 = hole; any shape) with no hole, or with nothing known: the
  one check the API, the CLIs and the web demo share (`hint`: how to fix the first)."""
  hole = np.asarray(mask) > 0.5
  if not hole.any():
    raise UserError(f"{name} has no hole pixels: nothing to fill ({hint})")
  if hole.all():
    raise UserError(f"{name} covers the whole image: nothing to condition on")


def image_pixels(image: ArrayLike) -> np.ndarray:
  """User pixels → float32: uint8 and uint16 arrays scaled by their range, floats as given
  (in [0, 1]); other integer arrays are ambiguous (0–1 or 0–255?) and refused."""
  x = np.asarray(image)
  if x.dtype in (np.uint8, np.uint16):
    return x.astype(np.float32) / np.iinfo(x.dtype).max
  if not np.issubdtype(x.dtype, np.floating):
    raise UserError(f"image pixels of dtype {x.dtype}: expected floats in [0, 1] or a uint8 or "
                    "uint16 array")
  return x.astype(np.float32)


def check_pixels(image: np.ndarray, known: np.ndarray, name: str) -> None:
  """The pixels the model reads must be finite and in [0, 1] (a 0–255 float image would be
  completed as if nearly white, silently)."""
  values = image[np.broadcast_to(known, image.shape)]
  if not np.all(np.isfinite(values)):
    raise UserError(f"{name} has NaN or infinite values at known pixels")
  if values.size and (values.min() < -0.01 or values.max() > 1.01):
    raise UserError(f"{name}'s values span [{values.min():g}, {values.max():g}]: expected floats "
                    "in [0, 1] or a uint8 or uint16 array (divide 0–255 floats by 255)")
