"""Resizing and quantisation shared by both stages (NHWC, float32 in [0, 1])."""

import jax
import jax.numpy as jnp


def area_downsample(x: jax.Array, size: int | tuple[int, int]) -> jax.Array:
  """Antialiased (box) downsampling to `size`×`size` (or `(height, width)`); exact block
  mean when divisible."""
  b, h, w, c = x.shape
  ph, pw = (size, size) if isinstance(size, int) else size
  if (h, w) == (ph, pw):
    return x
  if h % ph == 0 and w % pw == 0:
    return x.reshape(b, ph, h // ph, pw, w // pw, c).mean(axis=(2, 4))
  return jax.image.resize(x, (b, ph, pw, c), method="linear", antialias=True)


def mask_downsample(mask: jax.Array, size: int) -> jax.Array:
  """A low-res pixel is a hole if any of its high-res pixels is (1 = hole)."""
  b, h, w, c = mask.shape
  if (h, w) == (size, size):
    return mask
  if h % size == 0 and w % size == 0:
    return mask.reshape(b, size, h // size, size, w // size, c).max(axis=(2, 4))
  return (jax.image.resize(mask, (b, size, size, c), method="linear", antialias=False) > 0
          ).astype(mask.dtype)


def prior_upsample(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """A prior (or any prior-size image) brought up to (height, width): bicubic."""
  b, _, _, c = x.shape
  return jax.image.resize(x, (b, *size, c), method="cubic")


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


def _halve_sum(x: jax.Array) -> jax.Array:
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).sum(axis=(2, 4))


FILL_METHODS = ("harmonic", "biharmonic")


def smooth_fill(image: jax.Array, mask: jax.Array, method: str = "biharmonic",
                iterations: int | None = None) -> jax.Array:
  """The holes (mask 1) of `image` filled smoothly from their borders; known pixels kept.

  Pull-push (Gortler et al., 1996) first: known pixels are averaged down a pyramid of
  halvings, each hole pixel takes the coarsest level that reaches it, blended back up.
  Then, from that start, `method` "harmonic" runs `iterations` (default 20) Jacobi sweeps
  of Laplace's equation in the holes (towards the membrane interpolant), "biharmonic"
  `iterations` (default 20) conjugate-gradient steps on the thin-plate equation Δ²u = 0
  (scikit-image's `inpaint_biharmonic`, whose solution a few hundred reach). The membrane
  leaves a crease where it meets the known pixels; the thin plate continues their slope,
  so it may leave their range (it is clipped to [0, 1]). On the demo's 64² test crops
  with 20–40% holes (`experiments/notes_texture.md` §7), VGG LPIPS to the truth: harmonic
  0.193, biharmonic 0.174 (scikit-image's 0.175, OpenCV's Telea 0.176), PSNR 27.2 / 27.3 dB.
  Shapes: image [B, H, W, C], mask [B, H, W, 1]; an image with no known pixel gets 0.5.
  """
  if method not in FILL_METHODS:
    raise ValueError(f"fill method must be one of {FILL_METHODS}, got {method!r}")
  iterations = 20 if iterations is None else iterations
  known = (mask < 0.5).astype(image.dtype)
  pyramid = [(image * known, known)]
  while all(n % 2 == 0 and n > 1 for n in pyramid[-1][1].shape[1:3]):
    s, w = pyramid[-1]
    pyramid.append((_halve_sum(s), _halve_sum(w)))
  s, w = pyramid[-1]
  total = jnp.sum(s, axis=(1, 2), keepdims=True) / jnp.maximum(
      jnp.sum(w, axis=(1, 2), keepdims=True), 1e-8)
  total = jnp.where(jnp.sum(w, axis=(1, 2), keepdims=True) > 0, total, 0.5)
  estimate = jnp.where(w > 0, s / jnp.maximum(w, 1e-8), total)
  for s, w in reversed(pyramid[:-1]):
    up = jax.image.resize(estimate, s.shape, method="linear")
    confidence = jnp.minimum(w, 1.0)  # a level's pixel with a full pixel's worth of known data
    estimate = confidence * s / jnp.maximum(w, 1e-8) + (1.0 - confidence) * up
  hole = mask >= 0.5
  filled = jnp.where(hole, estimate, image)
  if method == "harmonic":
    def sweep(x, _):
      return jnp.where(hole, _neighbour_sum(x) / 4.0, image), None

    filled, _ = jax.lax.scan(sweep, filled, None, length=iterations)
    return filled
  filled = _thin_plate(filled, jnp.broadcast_to(hole, image.shape).astype(image.dtype),
                       iterations)
  return jnp.where(hole, jnp.clip(filled, 0.0, 1.0), image)


def _neighbour_sum(x: jax.Array) -> jax.Array:
  """Sum of the 4 neighbours over the last three axes [..., H, W, C], edges replicated
  (no flux through the image border)."""
  p = jnp.pad(x, ((0, 0),) * (x.ndim - 3) + ((1, 1), (1, 1), (0, 0)), mode="edge")
  return (p[..., :-2, 1:-1, :] + p[..., 2:, 1:-1, :] + p[..., 1:-1, :-2, :]
          + p[..., 1:-1, 2:, :])


def _laplacian(x: jax.Array) -> jax.Array:
  """5-point Laplacian, edges replicated."""
  return _neighbour_sum(x) - 4.0 * x


def _thin_plate(start: jax.Array, hole: jax.Array, iterations: int) -> jax.Array:
  """`iterations` CG steps from `start` on min Σ(Δu)² over the hole pixels (the normal
  equations LᵀL u = 0 there: Δ²u = 0 away from the border), per image so that CG's inner
  products never mix a batch."""
  def one(u, h):
    lap_t = jax.linear_transpose(_laplacian, u)
    normal = lambda x: lap_t(_laplacian(x))[0]
    step, _ = jax.scipy.sparse.linalg.cg(lambda e: normal(e * h) * h, -normal(u) * h,
                                         x0=jnp.zeros_like(u), tol=0.0, maxiter=iterations)
    return u + step * h
  return jax.vmap(one)(start, hole)
