"""The bijectors of the conditional flow (Glow / SRFlow / Flow-Fill §3.2).

Every bijector is a Linen module with `forward(x, cond) -> (y, logdet)` and
`inverse(y, cond) -> (x, logdet)`; the inverse's log-det is the negative of the
forward's, and log-dets are per example (shape [B]). The one compact
`__call__(x, cond, inverse)` holds the parameters, so both directions share them.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

HIGHEST = jax.lax.Precision.HIGHEST


def _sum_per_example(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=1)


class Bijector(nn.Module):
  """Adds the two named directions on top of `__call__(x, cond, inverse)`."""

  def forward(self, x: jax.Array, cond: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    return self(x, cond, inverse=False)

  def inverse(self, y: jax.Array, cond: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    return self(y, cond, inverse=True)


class ActNorm(Bijector):
  """Per-channel scale and bias; data-dependent init to zero mean, unit variance."""

  eps: float = 1e-6

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               inverse: bool = False) -> tuple[jax.Array, jax.Array]:
    axes = tuple(range(x.ndim - 1))
    bias = self.param("bias", lambda _: -jnp.mean(x, axis=axes))
    log_scale = self.param(
        "log_scale", lambda _: -jnp.log(jnp.std(x, axis=axes) + self.eps))
    pixels = math.prod(x.shape[1:-1])
    logdet = jnp.full((x.shape[0],), pixels * jnp.sum(log_scale))
    if inverse:
      return x * jnp.exp(-log_scale) - bias, -logdet
    return (x + bias) * jnp.exp(log_scale), logdet


class SoftPermutation(Bijector):
  """A fixed random orthogonal C×C mixing at every pixel (Ardizzone et al.).

  Not trained: the matrix lives in the `constants` collection, so optimisers never
  see it. Orthogonal, so the log-det is 0 and the inverse is the transpose.
  """

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               inverse: bool = False) -> tuple[jax.Array, jax.Array]:
    c = x.shape[-1]
    weight = self.variable(
        "constants", "weight",
        lambda: nn.initializers.orthogonal()(self.make_rng("params"), (c, c), x.dtype))
    w = jax.lax.stop_gradient(weight.value)
    y = jnp.einsum("...c,cd->...d", x, w.T if inverse else w, precision=HIGHEST)
    return y, jnp.zeros((x.shape[0],), x.dtype)


class AffineSubnet(nn.Module):
  """ReLU → Conv1×1 → ReLU → Conv3×3 (zero-initialised) of a first layer that is the
  condition's term, plus a bias-free 3×3 conv of x when the subnet reads x (a coupling).

  `cond_term` is the first layer's condition part, conv(ft_l) + bias, which `FlowLevel`
  computes for all K steps of a level in one conv (one conv with K·2·hidden outputs runs
  faster than 2K narrow ones, and its input gradient is one conv too).
  """

  out_features: int
  hidden: int = 64

  @nn.compact
  def __call__(self, x: jax.Array | None, cond_term: jax.Array) -> jax.Array:
    h = cond_term
    if x is not None:
      h = h + nn.Conv(self.hidden, (3, 3), use_bias=False, name="Conv_0")(x)
    h = nn.relu(nn.Conv(self.hidden, (1, 1), name="Conv_1")(nn.relu(h)))
    return nn.Conv(self.out_features, (3, 3), kernel_init=nn.initializers.zeros,
                   name="Conv_2")(h)


def scale_and_shift(raw: jax.Array, scale_fn: str,
                    clamp: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Split a subnet's output into (scale, log scale, shift).

  `sigmoid`: scale = sigmoid(raw + 2) + 1e-4 in (0, 1] (Glow, SRFlow), so training
  cannot blow up. `exp`: the paper's exp(s), soft-clamped to |log s| < clamp.
  """
  raw_s, shift = jnp.split(raw, 2, axis=-1)
  if scale_fn == "sigmoid":
    scale = nn.sigmoid(raw_s + 2.0) + 1e-4
    log_scale = jnp.log(scale)
  elif scale_fn == "exp":
    log_scale = clamp * jnp.tanh(raw_s / clamp)
    scale = jnp.exp(log_scale)
  else:
    raise ValueError(f"unknown scale_fn {scale_fn!r}: expected 'sigmoid' or 'exp'")
  return scale, log_scale, shift


class ConditionalAffine(Bijector):
  """Affine injector on all channels, then a conditional affine coupling (eq. 6, 5).

  injector: h = h * s(ft) + t(ft); coupling: h2 = h2 * s(h1, ft) + t(h1, ft). The condition
  is the step's share of ft_l's first-layer terms, [..., 2·hidden]: the injector's, then
  the coupling's (`FlowLevel.step_conditions`).
  """

  hidden: int = 64
  scale_fn: str = "sigmoid"
  clamp: float = 3.0

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array,
               inverse: bool = False) -> tuple[jax.Array, jax.Array]:
    if cond.shape[-1] != 2 * self.hidden:
      raise ValueError(f"ConditionalAffine(hidden={self.hidden}) takes a condition of "
                       f"{2 * self.hidden} channels, got {cond.shape[-1]}")
    c = x.shape[-1]
    c1 = c // 2
    injector_term, coupling_term = jnp.split(cond, 2, axis=-1)
    injector = AffineSubnet(2 * c, self.hidden, name="injector")
    coupling = AffineSubnet(2 * (c - c1), self.hidden, name="coupling")
    s_inj, log_s_inj, t_inj = scale_and_shift(injector(None, injector_term),
                                              self.scale_fn, self.clamp)

    def coupling_params(h1):
      return scale_and_shift(coupling(h1, coupling_term), self.scale_fn, self.clamp)

    if not inverse:
      h = x * s_inj + t_inj
      h1, h2 = h[..., :c1], h[..., c1:]
      s, log_s, t = coupling_params(h1)
      y = jnp.concatenate([h1, h2 * s + t], -1)
      return y, _sum_per_example(log_s_inj) + _sum_per_example(log_s)
    h1, h2 = x[..., :c1], x[..., c1:]
    s, log_s, t = coupling_params(h1)
    h = jnp.concatenate([h1, (h2 - t) / s], -1)
    y = (h - t_inj) / s_inj
    return y, -(_sum_per_example(log_s_inj) + _sum_per_example(log_s))


class FlowStep(Bijector):
  """ActNorm → soft permutation → conditional affine (its condition as there)."""

  hidden: int = 64
  scale_fn: str = "sigmoid"
  clamp: float = 3.0

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array,
               inverse: bool = False) -> tuple[jax.Array, jax.Array]:
    layers = [ActNorm(name="actnorm"), SoftPermutation(name="permutation"),
              ConditionalAffine(self.hidden, self.scale_fn, self.clamp, name="affine")]
    logdet = jnp.zeros((x.shape[0],), x.dtype)
    for layer in (reversed(layers) if inverse else layers):
      x, ld = layer(x, cond, inverse=inverse)
      logdet = logdet + ld
    return x, logdet


def squeeze(x: jax.Array) -> jax.Array:
  """[B, H, W, C] → [B, H/2, W/2, 4C]: every 2×2 block into channels (volume-preserving)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: jax.Array) -> jax.Array:
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, c // 4, 2, 2).transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, 2 * h, 2 * w, c // 4)


class Squeeze(Bijector):
  """`squeeze` as a bijector (log-det 0), for composing and testing like the others."""

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array | None = None,
               inverse: bool = False) -> tuple[jax.Array, jax.Array]:
    zero = jnp.zeros((x.shape[0],), x.dtype)
    return (unsqueeze(x) if inverse else squeeze(x)), zero


class ConditionalShift(Bijector):
  """y = x − base(cond): the flow models the residual from a base image (log-det 0).

  With the masked input's known low-res pixels as the base, a known pixel's residual
  is only its dequantisation noise, so the flow need not rebuild it from features.
  """

  @nn.compact
  def __call__(self, x: jax.Array, cond: jax.Array,
               inverse: bool = False) -> tuple[jax.Array, jax.Array]:
    zero = jnp.zeros((x.shape[0],), x.dtype)
    return (x + cond if inverse else x - cond), zero


def gaussian_log_prob(z: jax.Array, mean: jax.Array, log_scale: jax.Array) -> jax.Array:
  """Per-example log N(z; mean, exp(log_scale)²), summed over all but the batch axis."""
  d = (z - mean) * jnp.exp(-log_scale)
  return _sum_per_example(-0.5 * d * d - log_scale - 0.5 * math.log(2 * math.pi))


# The range a latent prior's log σ is softly kept in (`soft_clamp`). Unbounded, a prior's σ can
# grow without limit and f⁻¹ of its samples overflow float32; trained priors sit well inside
# (the shipped model's: −2.2 to 1.1, where the clamp moves log σ by under 0.02).
LOG_SCALE_RANGE = (-9.0, 5.0)


def soft_clamp(x: jax.Array, low: float, high: float) -> jax.Array:
  """x, smoothly kept in (low, high): within e^−d of x at a distance d from either bound."""
  x = low + jax.nn.softplus(x - low)
  return high - jax.nn.softplus(high - x)


class GaussianHead(nn.Module):
  """(mean, log σ) of a latent from a zero-initialised 3×3 conv: starts near N(0, I); log σ
  soft-clamped to LOG_SCALE_RANGE."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    raw = nn.Conv(2 * self.features, (3, 3), kernel_init=nn.initializers.zeros,
                  name="prior")(x)
    mean, log_scale = jnp.split(raw, 2, axis=-1)
    return mean, soft_clamp(log_scale, *LOG_SCALE_RANGE)


def standardize(z: jax.Array, mean: jax.Array, log_scale: jax.Array,
                temperature: float = 1.0) -> jax.Array:
  """z → ε with z = mean + τ·σ·ε (the coordinates sampling draws ε ~ N(0, I) in)."""
  return (z - mean) * jnp.exp(-log_scale) / temperature


def destandardize(eps: jax.Array, mean: jax.Array, log_scale: jax.Array,
                  temperature: float = 1.0) -> jax.Array:
  return mean + temperature * jnp.exp(log_scale) * eps


class Split(nn.Module):
  """Factor out half the channels as z_l with a learned conditional Gaussian prior.

  The split itself is a channel partition (log-det 0); it contributes the log
  density of z_l under N(mean, exp(log_scale)²), where (mean, log_scale) come from
  a zero-initialised 3×3 conv of [kept half, ft_l] (so the prior starts as N(0, I)).
  """

  @nn.compact
  def prior(self, kept: jax.Array, cond: jax.Array) -> tuple[jax.Array, jax.Array]:
    return GaussianHead(kept.shape[-1], name="head")(jnp.concatenate([kept, cond], -1))

  def forward(self, x: jax.Array, cond: jax.Array, *,
              standardized: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
    """x → (kept, z, log p(z | kept, cond)); with `standardized`, ε = (z − mean)/σ for z."""
    c = x.shape[-1] // 2
    kept, z = x[..., :c], x[..., c:]
    mean, log_scale = self.prior(kept, cond)
    logp = gaussian_log_prob(z, mean, log_scale)
    if standardized:
      z = standardize(z, mean, log_scale)
    return kept, z, logp

  def inverse(self, kept: jax.Array, z: jax.Array, cond: jax.Array, *, standardized: bool = False,
              temperature: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """(kept, z) → x. With `standardized`, z is ε and z_l = mean + τ·σ·ε."""
    mean, log_scale = self.prior(kept, cond)
    if standardized:
      z = destandardize(z, mean, log_scale, temperature)
    return jnp.concatenate([kept, z], -1), gaussian_log_prob(z, mean, log_scale)


class TopPrior(nn.Module):
  """The last level's prior: N(0, I) (the paper), or learned from ft_L (Glow's `learntop`).

  A conditional mean and scale let the top latent carry the condition too, so known
  pixels can be near-deterministic at every level, not only in the split-off halves.
  """

  learned: bool = False

  @nn.compact
  def __call__(self, cond: jax.Array, channels: int) -> Sequence[jax.Array]:
    if not self.learned:
      zeros = jnp.zeros(cond.shape[:-1] + (channels,), cond.dtype)
      return zeros, zeros
    return GaussianHead(channels, name="head")(cond)
