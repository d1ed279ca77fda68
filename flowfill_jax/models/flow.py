"""Stage 1: the conditional flow f and the model of p(I_s | I_m) (paper §3.1–3.2).

`ConditionalFlow` is L levels of (squeeze → K flow steps → split); the K steps of
a level are one `nn.scan` (parameters stacked [K, ...]). `scan_unroll` trades
compile time for speed: XLA:CPU runs the backward pass of a rolled loop of convs
about 10× slower than the unrolled one (measured: 5.0 s vs 0.49 s per
paper-size NLL gradient at batch 2), so the default unrolls fully (~20 s compile);
`scan_unroll=1` compiles one step per level, for quick tests.
`StructurePrior` puts the encoder E in front of it and speaks images: the NLL in
bits per dimension, latents of a prior image and back, and sampling at τ.
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from flowfill_jax import image_ops
from flowfill_jax.models.bijectors import (FlowStep, Split, gaussian_log_prob, squeeze,
                                           unsqueeze)
from flowfill_jax.models.encoder import GatedEncoder, level_conditions

_STEP_SCAN = dict(variable_axes={"params": 0, "constants": 0},
                  split_rngs={"params": True}, in_axes=nn.broadcast)


def _scan_steps(steps: int, reverse: bool, unroll):
  return nn.scan(_inverse_body if reverse else _forward_body, length=steps,
                 reverse=reverse, unroll=unroll, **_STEP_SCAN)


def _forward_body(step, carry, cond):
  h, logdet = carry
  h, ld = step.forward(h, cond)
  return (h, logdet + ld), None


def _inverse_body(step, carry, cond):
  h, logdet = carry
  h, ld = step.inverse(h, cond)
  return (h, logdet + ld), None


class FlowLevel(nn.Module):
  """Squeeze, K conditional flow steps, then (all levels but the last) a split."""

  steps: int
  hidden: int = 64
  scale_fn: str = "sigmoid"
  clamp: float = 3.0
  split: bool = True
  scan_unroll: int | bool = True

  def setup(self):
    self.step = FlowStep(self.hidden, self.scale_fn, self.clamp)
    if self.split:
      self.splitter = Split()

  def _run_steps(self, h, cond, inverse):
    scan = _scan_steps(self.steps, inverse, self.scan_unroll)
    (h, logdet), _ = scan(self.step, (h, jnp.zeros((h.shape[0],), h.dtype)), cond)
    return h, logdet

  def forward(self, x, cond, *, standardized=False):
    """x → (kept half or None, z_l (or its ε), log-det, log p(z_l))."""
    h, logdet = self._run_steps(squeeze(x), cond, inverse=False)
    if self.split:
      kept, z, logp = self.splitter.forward(h, cond, standardized=standardized)
      return kept, z, logdet, logp
    return None, h, logdet, gaussian_log_prob(h, 0.0, 0.0)

  def inverse(self, kept, z, cond, *, standardized=False, temperature=1.0):
    """(kept, z_l) → (x, log-det of the inverse, log p(z_l))."""
    if self.split:
      h, logp = self.splitter.inverse(kept, z, cond, standardized=standardized,
                                      temperature=temperature)
    else:
      h = temperature * z if standardized else z
      logp = gaussian_log_prob(h, 0.0, 0.0)
    h, logdet = self._run_steps(h, cond, inverse=True)
    return unsqueeze(h), logdet, logp


class ConditionalFlow(nn.Module):
  """f(x; ft): an image in [-0.5, 0.5] ↔ latents (z_1, …, z_L), given per-level ft_l."""

  levels: int = 4
  steps: int = 10
  hidden: int = 64
  scale_fn: str = "sigmoid"
  clamp: float = 3.0
  scan_unroll: int | bool = True

  def setup(self):
    self.blocks = [
        FlowLevel(self.steps, self.hidden, self.scale_fn, self.clamp,
                  split=i < self.levels - 1, scan_unroll=self.scan_unroll,
                  name=f"level_{i}")
        for i in range(self.levels)
    ]

  def forward(self, x, conds: Sequence[jax.Array], *, standardized=False):
    """x → (latents, log|det ∂f/∂x|, log p_Z(latents)), per example.

    With `standardized`, each z_l is returned as ε_l = (z_l − mean_l)/σ_l, the
    coordinates in which `inverse(..., standardized=True)` samples.
    """
    logdet = logp = jnp.zeros((x.shape[0],), x.dtype)
    latents = []
    for block, cond in zip(self.blocks, conds):
      x, z, ld, lp = block.forward(x, cond, standardized=standardized)
      latents.append(z)
      logdet, logp = logdet + ld, logp + lp
    return latents, logdet, logp

  def inverse(self, latents, conds, *, standardized=False, temperature=1.0):
    """latents → (x, log|det ∂f⁻¹/∂z|, log p_Z(latents)).

    With `standardized`, each z_l is ε ~ N(0, I) and is mapped to
    mean_l + τ·σ_l·ε by its level's prior first (sampling at temperature τ).
    """
    x = None
    logdet = logp = jnp.zeros((latents[0].shape[0],), latents[0].dtype)
    for block, z, cond in reversed(list(zip(self.blocks, latents, conds))):
      x, ld, lp = block.inverse(x, z, cond, standardized=standardized,
                                temperature=temperature)
      logdet, logp = logdet + ld, logp + lp
    return x, logdet, logp


def latent_shapes(prior_size: int, levels: int, channels: int = 3) -> list[tuple]:
  """Per-example shape of each z_l (the batch axis left out)."""
  shapes, size, c = [], prior_size, channels
  for level in range(levels):
    size, c = size // 2, c * 4
    if level < levels - 1:
      shapes.append((size, size, c // 2))
      c //= 2
    else:
      shapes.append((size, size, c))
  return shapes


def flatten_latents(latents) -> jax.Array:
  """(z_1, …, z_L) → [B, D]; D = 3·prior_size²."""
  return jnp.concatenate([z.reshape(z.shape[0], -1) for z in latents], axis=1)


def unflatten_latents(flat: jax.Array, prior_size: int, levels: int) -> list:
  out, start = [], 0
  for shape in latent_shapes(prior_size, levels):
    n = math.prod(shape)
    out.append(flat[:, start:start + n].reshape((flat.shape[0],) + shape))
    start += n
  return out


class StructurePrior(nn.Module):
  """Stage 1: E and f together model p(I_s | I_m) at `prior_size`² (paper eq. 3–4).

  Inputs at the model's boundary are the full-resolution masked image (float32 in
  [0, 1]) and mask (1 = hole); they are brought down to `prior_size` here
  (area for the image, any-hole for the mask).
  """

  prior_size: int = 64
  levels: int = 4
  steps: int = 10
  hidden: int = 64
  encoder_cnum: int = 48
  scale_fn: str = "sigmoid"
  clamp: float = 3.0
  n_bits: int = 8
  scan_unroll: int | bool = True

  def setup(self):
    if self.prior_size % 2 ** self.levels:
      raise ValueError(f"prior_size {self.prior_size} must be divisible by "
                       f"2**levels = {2 ** self.levels}")
    self.encoder = GatedEncoder(self.encoder_cnum)
    self.flow = ConditionalFlow(self.levels, self.steps, self.hidden, self.scale_fn,
                                self.clamp, self.scan_unroll)

  @property
  def num_dims(self) -> int:
    return 3 * self.prior_size ** 2

  def conditions(self, masked_image, mask):
    """E(I_m↓, M↓) → the per-level conditions ft_l."""
    mask_lr = image_ops.mask_downsample(mask, self.prior_size)
    image_lr = image_ops.area_downsample(masked_image, self.prior_size) * (1 - mask_lr)
    features = self.encoder(image_lr, mask_lr)
    return level_conditions(features, self.prior_size, self.levels)

  def encode(self, prior, masked_image, mask, *, standardized=False):
    """A prior image in flow space ([-0.5, 0.5], prior_size²) → (latents, logdet, logp)."""
    return self.flow.forward(prior, self.conditions(masked_image, mask),
                             standardized=standardized)

  def decode(self, latents, masked_image, mask, *, standardized=False, temperature=1.0):
    """Latents → the prior image in flow space (and the inverse log-det, log p_Z)."""
    return self.flow.inverse(latents, self.conditions(masked_image, mask),
                             standardized=standardized, temperature=temperature)

  def bits_per_dim(self, image, masked_image, mask, rng=None):
    """NLL of I_s = I_gt↓ in bits per dimension, with dequantisation (Glow's bits_x).

    `rng` draws the uniform dequantisation noise; None uses mid-bin values.
    """
    prior = image_ops.dequantize(
        image_ops.area_downsample(image, self.prior_size), self.n_bits, rng)
    _, logdet, logp = self.encode(prior, masked_image, mask)
    nll = -(logp + logdet) + self.num_dims * self.n_bits * math.log(2.0)
    return nll / (self.num_dims * math.log(2.0))

  def __call__(self, image, masked_image, mask, rng=None):
    return self.bits_per_dim(image, masked_image, mask, rng)

  def sample_and_log_prob(self, rng, masked_image, mask, temperature=0.8):
    """One prior per input, I_s = f⁻¹(z; E(I_m↓)) with z_l ~ N(mean_l, (τσ_l)²), in
    [0, 1], and its exact log density log p(I_s | I_m) (per example, nats)."""
    batch = masked_image.shape[0]
    keys = jax.random.split(rng, self.levels)
    eps = [jax.random.normal(k, (batch,) + s, masked_image.dtype)
           for k, s in zip(keys, latent_shapes(self.prior_size, self.levels))]
    x, logdet_inverse, logp = self.decode(eps, masked_image, mask, standardized=True,
                                          temperature=temperature)
    return image_ops.postprocess(x), logp + logdet_inverse

  def sample(self, rng, masked_image, mask, temperature=0.8):
    """One prior per input in [0, 1] (see `sample_and_log_prob`)."""
    return self.sample_and_log_prob(rng, masked_image, mask, temperature)[0]

  def log_prob(self, prior, masked_image, mask):
    """Exact log p(I_s | I_m) in nats of a prior image in [0, 1] at prior_size²."""
    _, logdet, logp = self.encode(prior - 0.5, masked_image, mask)
    return logp + logdet
