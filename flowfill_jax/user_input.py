"""Checks of what a user asks for, shared by the API, the CLIs and the web demo (numpy only,
so a CLI can check its flags before JAX starts)."""

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
