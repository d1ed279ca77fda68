"""Per-image PSNR, SSIM and mean ℓ1 (%), for float NHWC images in [0, 1].

Each returns one value per image (shape [B]) so that callers can bucket by hole ratio and
average themselves.
"""

import jax
import jax.numpy as jnp
import numpy as np

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # skimage's choice: an 11-tap window at sigma 1.5, as in Wang et al. 2004
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _per_image_mean(x: jax.Array) -> jax.Array:
  return jnp.mean(x.reshape(x.shape[0], -1), axis=1)


@jax.jit
def psnr(a: jax.Array, b: jax.Array) -> jax.Array:
  """PSNR in dB with data range 1; inf where the images are equal."""
  mse = _per_image_mean(jnp.square(a.astype(jnp.float32) - b.astype(jnp.float32)))
  return -10.0 * jnp.log10(mse)


@jax.jit
def l1_percent(a: jax.Array, b: jax.Array) -> jax.Array:
  """Mean absolute error in percent of the [0, 1] range."""
  return 100.0 * _per_image_mean(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)))


def gaussian_taps(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> np.ndarray:
  """The 1-D kernel scipy.ndimage.gaussian_filter uses: radius int(truncate·sigma + 0.5)."""
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1)
  taps = np.exp(-0.5 * (x / sigma) ** 2)
  return (taps / taps.sum()).astype(np.float32)


def _valid_blur(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Separable blur of NHWC maps with no padding, as weighted sums of shifted slices.

  skimage filters with reflected borders and then crops the filter radius off every side;
  the unpadded ('VALID') result is exactly that crop, so the border mode never matters.
  (Shifted slices run ~40× faster than XLA's depthwise convolution on CPU.)
  """
  k = len(taps)
  h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
  x = sum((float(t) * x[:, i:i + h] for i, t in enumerate(taps)), jnp.zeros(()))
  return sum((float(t) * x[:, :, i:i + w] for i, t in enumerate(taps)), jnp.zeros(()))


@jax.jit
def ssim(a: jax.Array, b: jax.Array) -> jax.Array:
  """Gaussian-window SSIM (11×11, sigma 1.5, population covariance, data range 1).

  Matches skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1, channel_axis=-1) per image. Images must be at
  least 11 pixels on each side.
  """
  taps = gaussian_taps()
  if min(a.shape[1:3]) < len(taps):
    raise ValueError(f"SSIM needs images of at least {len(taps)}² pixels, got {a.shape[1:3]}")
  a = a.astype(jnp.float32)
  b = b.astype(jnp.float32)
  moments = _valid_blur(jnp.concatenate([a, b, a * a, b * b, a * b], axis=-1), taps)
  ux, uy, uxx, uyy, uxy = jnp.split(moments, 5, axis=-1)
  vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
  c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  return _per_image_mean(s)
