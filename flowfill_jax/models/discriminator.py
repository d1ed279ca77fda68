"""The stage-2 discriminator D: a spectrally normalised PatchGAN.

As in pix2pix / EdgeConnect (the discriminator of ICT's upsampler, which G
follows): 4×4 convs, stride 2 while the width grows 64 → 128 → 256, then a
stride-1 conv to 512 and one to a 1-channel logit map, leaky ReLU 0.2 between,
no normalisation but spectral normalisation (Miyato et al., 2018) of every
kernel, which bounds D's Lipschitz constant and keeps the GAN stable without a
gradient penalty. 'SAME' padding, so a 256² image gives a 32² logit map.

`flax.linen.SpectralNorm` keeps its power-iteration vectors `u` (and the last
`sigma`) in the `batch_stats` collection: pass `update_stats=True` with
`mutable=['batch_stats']` once per training step (D's step), `False` elsewhere.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class PatchDiscriminator(nn.Module):
  """Image (optionally with its mask) → per-patch real/fake logits [B, H/8, W/8, 1]."""

  features: Sequence[int] = (64, 128, 256, 512)
  strides: Sequence[int] = (2, 2, 2, 1)
  kernel_size: int = 4
  negative_slope: float = 0.2
  with_mask: bool = False
  power_iterations: int = 1
  dtype: Any = None  # convs' computation dtype (bf16 on accelerators); logits in the input's

  @nn.compact
  def __call__(self, image: jax.Array, mask: jax.Array | None = None, *,
               update_stats: bool) -> jax.Array:
    x = image
    if self.with_mask:
      if mask is None:
        raise ValueError("PatchDiscriminator(with_mask=True) needs the mask")
      x = jnp.concatenate([image, mask.astype(image.dtype)], axis=-1)
    k = (self.kernel_size, self.kernel_size)
    widths = (*self.features, 1)
    strides = (*self.strides, 1)
    for i, (n, s) in enumerate(zip(widths, strides)):
      conv = nn.Conv(n, k, strides=s, padding="SAME", dtype=self.dtype, name=f"conv_{i}")
      x = nn.SpectralNorm(conv, n_steps=self.power_iterations, name=f"sn_{i}")(
          x, update_stats=update_stats)
      if i < len(self.features):
        x = nn.leaky_relu(x, self.negative_slope)
    return x.astype(image.dtype)
