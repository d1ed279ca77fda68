"""The masked input at the prior's size: what stage 1 sees besides E's features.

Downsampling a mask by "any hole" (docs/design.md) turns a 35% hole at 256² into ~54% at
16², and E's decoders (no skip path) keep fewer numbers than there are known
pixels. So the flow also gets the low-res input itself, as SRFlow conditions its
flow on the low-res image: the share of each low-res pixel that is known, the mean
of its known pixels, and a base image (known content where there is some, E's
coarse guess for the rest) that the flow models the residual from.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from flowfill_jax import image_ops


class LowRes(NamedTuple):
  known: jax.Array      # [B, P, P, 1] share of each low-res pixel that is known, in [0, 1]
  hole: jax.Array       # [B, P, P, 1] 1 where any of its pixels is a hole (SPEC's M↓)
  known_sum: jax.Array  # [B, P, P, 3] area mean of I_m: the known pixels' contribution
  known_mean: jax.Array  # [B, P, P, 3] mean of the known pixels alone (0 where none)


def lowres_views(masked_image: jax.Array, mask: jax.Array, size: int) -> LowRes:
  """The masked image and mask (1 = hole) at `size`², area-averaged."""
  known = 1.0 - image_ops.area_downsample(mask, size)
  known_sum = image_ops.area_downsample(masked_image * (1.0 - mask), size)
  known_mean = jnp.where(known > 1e-3, known_sum / jnp.maximum(known, 1e-3), 0.0)
  return LowRes(known, image_ops.mask_downsample(mask, size), known_sum, known_mean)


def base_image(low: LowRes, coarse: jax.Array) -> jax.Array:
  """Flow-space estimate of I_gt↓: exact where fully known, `coarse` fills the rest.

  A low-res pixel's value is the known share times the known pixels' mean plus the
  hole share times the unknown pixels' mean; `coarse` (in [0, 1]) guesses the latter.
  """
  return low.known_sum + (1.0 - low.known) * coarse - 0.5


def space_to_depth(x: jax.Array, factor: int) -> jax.Array:
  """[B, H, W, C] → [B, H/f, W/f, C·f²]: every f×f block into channels."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // factor, factor, w // factor, factor, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // factor, w // factor, factor * factor * c)
