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
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from flowfill_jax import image_ops
from flowfill_jax.models import condition
from flowfill_jax.models.bijectors import (
  ActNorm,
  ConditionalShift,
  FlowStep,
  Split,
  TopPrior,
  destandardize,
  gaussian_log_prob,
  squeeze,
  standardize,
  unsqueeze,
)
from flowfill_jax.models.encoder import GatedEncoder, level_conditions


def _scan_steps(steps: int, reverse: bool, unroll: int):
  return nn.scan(_inverse_body if reverse else _forward_body, length=steps,
                 reverse=reverse, unroll=unroll or steps,
                 variable_axes={"params": 0, "constants": 0}, split_rngs={"params": True})


def _forward_body(step, carry, cond):
  h, logdet = carry
  h, ld = step(h, cond, inverse=False)
  return (h, logdet + ld), None


def _inverse_body(step, carry, cond):
  h, logdet = carry
  h, ld = step(h, cond, inverse=True)
  return (h, logdet + ld), None


class FlowLevel(nn.Module):
  """Squeeze, K conditional flow steps, then (all levels but the last) a split.

  The steps' subnets read ft_l through their first layers; those layers' condition terms
  for all K steps are one 3×3 conv of ft_l here (`step_conditions`), each step's share
  passed to it as its condition.
  """

  steps: int
  hidden: int = 64
  scale_fn: str = "sigmoid"
  clamp: float = 3.0
  split: bool = True
  learn_top: bool = False
  scan_unroll: int = 0  # flow steps per scan iteration; 0 = all

  def setup(self) -> None:
    self.condition_projection = nn.Conv(self.steps * 2 * self.hidden, (3, 3))
    self.step = FlowStep(self.hidden, self.scale_fn, self.clamp)
    if self.split:
      self.splitter = Split()
    else:
      self.top = TopPrior(self.learn_top)

  def step_conditions(self, cond: jax.Array) -> jax.Array:
    """ft_l [B, H, W, C] → each step's condition [K, B, H, W, 2·hidden]."""
    terms = self.condition_projection(cond)
    terms = terms.reshape(terms.shape[:-1] + (self.steps, 2 * self.hidden))
    return jnp.moveaxis(terms, -2, 0)

  def _run_steps(self, h, cond, inverse):
    scan = _scan_steps(self.steps, inverse, self.scan_unroll)
    carry = (h, jnp.zeros((h.shape[0],), h.dtype))
    (h, logdet), _ = scan(self.step, carry, self.step_conditions(cond))
    return h, logdet

  def forward(self, x: jax.Array, cond: jax.Array, *,
              standardized: bool = False) -> tuple[Any, jax.Array, jax.Array, jax.Array]:
    """x → (kept half or None, z_l (or its ε), log-det, log p(z_l))."""
    h, logdet = self._run_steps(squeeze(x), cond, inverse=False)
    if self.split:
      kept, z, logp = self.splitter.forward(h, cond, standardized=standardized)
      return kept, z, logdet, logp
    mean, log_scale = self.top(cond, h.shape[-1])
    logp = gaussian_log_prob(h, mean, log_scale)
    return None, standardize(h, mean, log_scale) if standardized else h, logdet, logp

  def inverse(self, kept: Any, z: jax.Array, cond: jax.Array, *, standardized: bool = False,
              temperature: float = 1.0) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(kept, z_l) → (x, log-det of the inverse, log p(z_l))."""
    if self.split:
      h, logp = self.splitter.inverse(kept, z, cond, standardized=standardized,
                                      temperature=temperature)
    else:
      mean, log_scale = self.top(cond, z.shape[-1])
      h = destandardize(z, mean, log_scale, temperature) if standardized else z
      logp = gaussian_log_prob(h, mean, log_scale)
    h, logdet = self._run_steps(h, cond, inverse=True)
    return unsqueeze(h), logdet, logp


class ConditionalFlow(nn.Module):
  """f(x; ft): an image in [-0.5, 0.5] ↔ latents (z_1, …, z_L), given per-level ft_l."""

  levels: int = 4
  steps: int = 10
  hidden: int = 64
  scale_fn: str = "sigmoid"
  clamp: float = 3.0
  learn_top: bool = False
  scan_unroll: int = 0  # flow steps per scan iteration; 0 = all (fully unrolled, fastest)

  def setup(self) -> None:
    self.blocks = [
        FlowLevel(self.steps, self.hidden, self.scale_fn, self.clamp,
                  split=i < self.levels - 1, learn_top=self.learn_top,
                  scan_unroll=self.scan_unroll, name=f"level_{i}")
        for i in range(self.levels)
    ]

  def forward(self, x: jax.Array, conds: Sequence[jax.Array], *,
              standardized: bool = False) -> tuple[list[jax.Array], jax.Array, jax.Array]:
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

  def inverse(self, latents: Sequence[jax.Array], conds: Sequence[jax.Array], *,
              standardized: bool = False,
              temperature: float = 1.0) -> tuple[Any, jax.Array, jax.Array]:
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


def flatten_latents(latents: Sequence[jax.Array]) -> jax.Array:
  """(z_1, …, z_L) → [B, D]; D = 3·prior_size²."""
  return jnp.concatenate([z.reshape(z.shape[0], -1) for z in latents], axis=1)


def unflatten_latents(flat: jax.Array, prior_size: int, levels: int) -> list:
  out, start = [], 0
  for shape in latent_shapes(prior_size, levels):
    n = math.prod(shape)
    out.append(flat[:, start:start + n].reshape((flat.shape[0],) + shape))
    start += n
  return out


# Sampled priors (image units) further than this outside [0, 1] come from an f⁻¹ that overflowed
# or nearly did (a far-tail latent, or a flow pushed off its training range).
PRIOR_RANGE = (-0.5, 1.5)


def usable_priors(priors: jax.Array) -> jax.Array:
  """[B] whether each sampled prior [B, P, P, 3] (image units) is finite and in PRIOR_RANGE.
  An unusable sample's log density is −inf (`StructurePrior.sample_and_log_prob`), and G gets
  a stand-in prior (`pipeline.TwoStage.generator_prior`, `TextureStage.training_priors`)."""
  low, high = PRIOR_RANGE
  inside = jnp.isfinite(priors) & (priors >= low) & (priors <= high)
  return jnp.all(inside.reshape(priors.shape[0], -1), axis=1)


class Condition(NamedTuple):
  levels: list   # ft_l per flow level
  base: jax.Array  # [B, P, P, 3] flow-space image the flow models the residual from
  coarse: jax.Array  # [B, P, P, 3] E's coarse RGB guess of I_gt↓, in [0, 1]


class StructurePrior(nn.Module):
  """Stage 1: E and f together model p(I_s | I_m) at `prior_size`² (paper eq. 3–4).

  Inputs at the model's boundary are the full-resolution masked image (float32 in
  [0, 1]) and mask (1 = hole); they are brought down to `prior_size` here (area
  averages; `mask_mode` "any" shows E the any-hole mask of docs/design.md, "fraction" the
  share of each low-res pixel that is missing).

  Deviations from the paper, each a field (docs/training.md): `residual` puts a
  conditional shift by the base image (known low-res content; in the hole E's coarse
  output, or with `hole_base` "smooth" the low-res view of `image_ops.smooth_fill`'s
  full-resolution fill) in front of f; `lowres_condition` appends the space-to-depth of
  [base, M↓, known share] to every ft_l (projected to `lowres_width` channels by a 1×1
  conv when that is > 0: the raw space-to-depth has 5·4^(l+1) channels, which at the
  coarse levels outweigh the rest of f); `cond_norm` ActNorm-normalises each ft_l;
  `learn_top` gives z_L a conditional prior. All off is the paper's model.
  """

  prior_size: int = 64
  levels: int = 4
  steps: int = 10
  hidden: int = 64
  encoder_cnum: int = 48
  scale_fn: str = "sigmoid"
  clamp: float = 3.0
  n_bits: int = 8
  mask_mode: str = "any"
  residual: bool = False
  hole_base: str = "coarse"  # the base in the hole: E's "coarse" output or a "smooth" fill
  smooth_fill_method: str = "biharmonic"  # `image_ops.smooth_fill`'s method for hole_base "smooth"
  lowres_condition: bool = False
  lowres_width: int = 0  # 0: the space-to-depth channels as they are
  cond_norm: bool = False
  learn_top: bool = False
  scan_unroll: int = 0  # flow steps per scan iteration; 0 = all
  encoder_dtype: Any = None  # E's convolutions (bf16 on accelerators); f stays float32

  def setup(self) -> None:
    if self.prior_size % 2 ** self.levels:
      raise ValueError(f"prior_size {self.prior_size} must be divisible by "
                       f"2**levels = {2 ** self.levels}")
    if self.mask_mode not in ("any", "fraction"):
      raise ValueError(f"mask_mode {self.mask_mode!r}: expected 'any' or 'fraction'")
    if self.hole_base not in ("coarse", "smooth"):
      raise ValueError(f"hole_base {self.hole_base!r}: expected 'coarse' or 'smooth'")
    self.encoder = GatedEncoder(self.encoder_cnum, dtype=self.encoder_dtype)
    self.shift = ConditionalShift()
    if self.lowres_condition and self.lowres_width:
      self.lowres_projections = [nn.Conv(self.lowres_width, (1, 1), name=f"lowres_projection_{i}")
                                 for i in range(self.levels)]
    if self.cond_norm:
      # eps 0.1: a channel that is constant in the first batch (a mask share) is not
      # blown up by 1/std.
      self.cond_norms = [ActNorm(eps=0.1, name=f"cond_norm_{i}") for i in range(self.levels)]
    self.flow = ConditionalFlow(self.levels, self.steps, self.hidden, self.scale_fn,
                                self.clamp, self.learn_top, self.scan_unroll)

  @property
  def num_dims(self) -> int:
    return 3 * self.prior_size ** 2

  def conditions(self, masked_image: jax.Array, mask: jax.Array) -> Condition:
    """E(I_m↓, M↓) and the low-res input → the per-level ft_l and the base image."""
    low = condition.lowres_views(masked_image, mask, self.prior_size)
    if self.mask_mode == "fraction":
      e_image, e_mask = low.known_mean, 1.0 - low.known
    else:
      e_image, e_mask = low.known_sum * (1.0 - low.hole), low.hole
    features, coarse = self.encoder(e_image, e_mask)
    conds = level_conditions(features, self.prior_size, self.levels)
    if self.residual and self.hole_base == "smooth":
      filled = image_ops.smooth_fill(masked_image, mask, self.smooth_fill_method)
      base = image_ops.area_downsample(filled, self.prior_size) - 0.5
    elif self.residual:
      base = condition.base_image(low, coarse)
    else:
      base = jnp.zeros_like(coarse)
    if self.lowres_condition:
      shown = base if self.residual else (low.known_sum - 0.5 * low.known) * (1.0 - low.hole)
      lowres = jnp.concatenate([shown, low.hole, low.known], -1)
      views = [condition.space_to_depth(lowres, 2 ** (i + 1)) for i in range(self.levels)]
      if self.lowres_width:
        views = [project(v) for project, v in zip(self.lowres_projections, views)]
      conds = [jnp.concatenate([c, v], -1) for c, v in zip(conds, views)]
    if self.cond_norm:
      conds = [norm(c)[0] for norm, c in zip(self.cond_norms, conds)]
    return Condition(conds, base, coarse)

  def _encode(self, x, cond: Condition, standardized):
    x, _ = self.shift.forward(x, cond.base)
    return self.flow.forward(x, cond.levels, standardized=standardized)

  def encode(self, prior: jax.Array, masked_image: jax.Array, mask: jax.Array, *,
             standardized: bool = False,
             cond: Condition | None = None) -> tuple[list[jax.Array], jax.Array, jax.Array]:
    """A prior image in flow space ([-0.5, 0.5], prior_size²) → (latents, logdet, logp).

    `cond`: `conditions(masked_image, mask)` when the caller already has it (E runs once).
    """
    cond = self.conditions(masked_image, mask) if cond is None else cond
    return self._encode(prior, cond, standardized)

  def decode(self, latents: Sequence[jax.Array], masked_image: jax.Array, mask: jax.Array, *,
             standardized: bool = False, temperature: float = 1.0,
             cond: Condition | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Latents → the prior image in flow space (and the inverse log-det, log p_Z); `cond`
    as in `encode`."""
    cond = self.conditions(masked_image, mask) if cond is None else cond
    x, logdet, logp = self.flow.inverse(latents, cond.levels, standardized=standardized,
                                        temperature=temperature)
    x, _ = self.shift.inverse(x, cond.base)
    return x, logdet, logp

  def _bits(self, x, cond: Condition):
    """NLL in bits/dim of a dequantised flow-space prior, with the −log(n_bins) term."""
    _, logdet, logp = self._encode(x, cond, False)
    nll = -(logp + logdet) + self.num_dims * self.n_bits * math.log(2.0)
    return nll / (self.num_dims * math.log(2.0))

  def losses(self, image: jax.Array, masked_image: jax.Array, mask: jax.Array,
             rng: jax.Array | None = None) -> dict[str, jax.Array]:
    """Per-example training terms: `bits_per_dim` of I_s = I_gt↓ (dequantised by
    `rng`'s uniform noise, or mid-bin when None) and `coarse_l1`, the mean |E's coarse
    output − I_gt↓| (the auxiliary loss that trains E's RGB head, as in DeepFill)."""
    truth = image_ops.area_downsample(image, self.prior_size)
    cond = self.conditions(masked_image, mask)
    bits = self._bits(image_ops.dequantize(truth, self.n_bits, rng), cond)
    coarse_l1 = jnp.mean(jnp.abs(cond.coarse - truth), axis=(1, 2, 3))
    return {"bits_per_dim": bits, "coarse_l1": coarse_l1}

  def bits_per_dim(self, image: jax.Array, masked_image: jax.Array, mask: jax.Array,
                   rng: jax.Array | None = None) -> jax.Array:
    """NLL of I_s = I_gt↓ in bits per dimension, with dequantisation (Glow's bits_x).

    `rng` draws the uniform dequantisation noise; None uses mid-bin values.
    """
    return self.losses(image, masked_image, mask, rng)["bits_per_dim"]

  def __call__(self, image: jax.Array, masked_image: jax.Array, mask: jax.Array,
               rng: jax.Array | None = None) -> jax.Array:
    return self.bits_per_dim(image, masked_image, mask, rng)

  def prior_bits_per_dim(self, prior: jax.Array, masked_image: jax.Array,
                         mask: jax.Array) -> jax.Array:
    """bits/dim of a prior image in [0, 1] at prior_size², quantised to `n_bits` and
    evaluated mid-bin: the figure training reports, for any prior (a diagnostic)."""
    x = image_ops.dequantize(prior, self.n_bits, None)
    return self._bits(x, self.conditions(masked_image, mask))

  def sample_and_log_prob(self, rng: jax.Array, masked_image: jax.Array, mask: jax.Array,
                          temperature: float = 0.8,
                          num: int = 1) -> tuple[jax.Array, jax.Array]:
    """`num` priors per input, I_s = f⁻¹(z; E(I_m↓)) with z_l ~ N(mean_l, (τσ_l)²), and
    their exact log densities log p(I_s | I_m) under the model (τ = 1), in nats:
    [B·num, …], input-major (b0s0, b0s1, …). E runs once per input, not per sample.

    The prior is returned as sampled (x + 0.5, not clipped to [0, 1]) so that
    `log_prob` of it gives the same figure; clip it to show or use it as an image.
    By change of variables, log p(x) = log p_Z(z) − log|det ∂f⁻¹/∂z|. A sample that is not
    `usable_priors` (f⁻¹ overflowed) gets −inf: ranked last, never a finite figure that
    `log_prob` of it would not give.
    """
    batch = masked_image.shape[0] * num
    keys = jax.random.split(rng, self.levels)
    eps = [jax.random.normal(k, (batch,) + s, masked_image.dtype)
           for k, s in zip(keys, latent_shapes(self.prior_size, self.levels))]
    cond = jax.tree.map(lambda a: jnp.repeat(a, num, axis=0),
                        self.conditions(masked_image, mask))
    x, logdet_inverse, logp = self.decode(eps, masked_image, mask, standardized=True,
                                          temperature=temperature, cond=cond)
    prior = x + 0.5
    return prior, jnp.where(usable_priors(prior), logp - logdet_inverse, -jnp.inf)

  def sample(self, rng: jax.Array, masked_image: jax.Array, mask: jax.Array,
             temperature: float = 0.8) -> jax.Array:
    """One prior per input as an image in [0, 1] (see `sample_and_log_prob`)."""
    prior, _ = self.sample_and_log_prob(rng, masked_image, mask, temperature)
    return jnp.clip(prior, 0.0, 1.0)

  def log_prob(self, prior: jax.Array, masked_image: jax.Array, mask: jax.Array) -> jax.Array:
    """Exact log p(I_s | I_m) in nats of a prior at prior_size² (image units, x + 0.5):
    log p_Z(f(x)) + log|det ∂f/∂x|, at the given continuous point."""
    _, logdet, logp = self.encode(prior - 0.5, masked_image, mask)
    return logp + logdet
