"""Resizing and quantisation shared by both stages (NHWC, float32 in [0, 1])."""

import jax
import jax.numpy as jnp


def area_downsample(x: jax.Array, size: int) -> jax.Array:
  """Antialiased (box) downsampling to `size`×`size`; exact block mean when divisible."""
  b, h, w, c = x.shape
  if (h, w) == (size, size):
    return x
  if h % size == 0 and w % size == 0:
    return x.reshape(b, size, h // size, size, w // size, c).mean(axis=(2, 4))
  return jax.image.resize(x, (b, size, size, c), method="linear", antialias=True)


def mask_downsample(mask: jax.Array, size: int) -> jax.Array:
  """A low-res pixel is a hole if any of its high-res pixels is (1 = hole)."""
  b, h, w, c = mask.shape
  if (h, w) == (size, size):
    return mask
  if h % size == 0 and w % size == 0:
    return mask.reshape(b, size, h // size, size, w // size, c).max(axis=(2, 4))
  return (jax.image.resize(mask, (b, size, size, c), method="linear", antialias=False) > 0
          ).astype(mask.dtype)


def bicubic_upsample(x: jax.Array, size: int) -> jax.Array:
  b, _, _, c = x.shape
  return jax.image.resize(x, (b, size, size, c), method="cubic")


def quantize(x: jax.Array, n_bits: int) -> jax.Array:
  """Integer bin index in [0, 2**n_bits) of an image in [0, 1] (as if saved as 8-bit)."""
  x8 = jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0)
  return jnp.floor(x8 / 2 ** (8 - n_bits))


def dequantize(x: jax.Array, n_bits: int, rng: jax.Array | None) -> jax.Array:
  """Uniform dequantisation into [-0.5, 0.5] (Glow); mid-bin when `rng` is None."""
  n_bins = 2.0 ** n_bits
  q = quantize(x, n_bits)
  u = 0.5 if rng is None else jax.random.uniform(rng, x.shape, x.dtype)
  return (q + u) / n_bins - 0.5


def postprocess(x: jax.Array) -> jax.Array:
  """Flow space [-0.5, 0.5] back to an image in [0, 1]."""
  return jnp.clip(x + 0.5, 0.0, 1.0)
