"""Layers shared by the networks of both stages."""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.linear import default_kernel_init


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
  """A 4×4/2 transposed-conv kernel [4, 4, Cin, F] → its sub-pixel form [2, 2, Cin, 4·F].

  `lax.conv_transpose(x, w, (2, 2), 'SAME')` (what `nn.ConvTranspose(F, (4, 4), 2,
  padding='SAME')` computes, kernel not flipped) pads the 2×-dilated input by 2 on
  each side. Along one axis, output `2m + a` then reads input `m - 1 + a + d` with
  tap `w[2d + a]`, d ∈ {0, 1}: phase `a` is a 2-tap conv with taps `w[a], w[2 + a]`
  over the input padded by 1, at output position `m + a`. So the sub-pixel kernel
  is `k[dy, dx, :, (a, b, f)] = w[2·dy + a, 2·dx + b, :, f]`, output channels
  phase-major.
  """
  kh, kw, cin, f = kernel.shape
  if (kh, kw) != (4, 4):
    raise ValueError(f"subpixel_kernel needs a 4×4 kernel, got {kernel.shape}")
  k = kernel.reshape(2, 2, 2, 2, cin, f)       # [dy, a, dx, b, Cin, F]
  k = k.transpose(0, 2, 4, 1, 3, 5)            # [dy, dx, Cin, a, b, F]
  return k.reshape(2, 2, cin, 4 * f)


def icnr_init(base: Callable | None = None) -> Callable:
  """ICNR (Aitken et al., 2017) for a 4×4/2 transposed-conv kernel [4, 4, Cin, F].

  Draws one 2×2 sub-kernel `v` with `base` (default LeCun normal; fan-in 4·Cin, that of the sub-pixel conv each
  output phase really is) and repeats it: `w[i, j] = v[i // 2, j // 2]`. Then every phase
  (a, b) of `subpixel_kernel(w)` is the same `v`, so output `2m + a` = `conv(x, v)[m + a]`:
  a conv followed by nearest-neighbour upsampling, no checkerboard at init. The phases
  are free to differ once trained.
  """
  base = base or nn.initializers.lecun_normal()

  def init(key, shape, dtype=jnp.float32):
    kh, kw, cin, f = shape
    if (kh, kw) != (4, 4):
      raise ValueError(f"icnr_init is for 4×4 transposed-conv kernels, got {shape}")
    v = base(key, (2, 2, cin, f), dtype)
    return jnp.repeat(jnp.repeat(v, 2, axis=0), 2, axis=1)
  return init


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """[B, H, W, C] → [B, factor·H, factor·W, C], each pixel repeated (exact)."""
  return jnp.repeat(jnp.repeat(x, factor, axis=-3), factor, axis=-2)


def depth_to_space(phases: jax.Array) -> jax.Array:
  """[..., H, W, 2, 2, C] phases (a, b) → [..., 2H, 2W, C], out[2m + a, 2n + b] = phase (a, b)."""
  *lead, h, w, _, _, c = phases.shape
  n = len(lead)
  perm = tuple(range(n)) + (n, n + 2, n + 1, n + 3, n + 4)
  return phases.transpose(perm).reshape((*lead, 2 * h, 2 * w, c))


class SubpixelConvTranspose(nn.Module):
  """`nn.ConvTranspose(features, (4, 4), strides=2, padding='SAME')` in sub-pixel form.

  Same parameters (`kernel` [4, 4, Cin, F], `bias` [F], same initialisers) and the
  same function, computed as one stride-1 2×2 conv over the input padded by 1 to
  4·F channels; phase (a, b) of the output is that conv's (a, b)-shifted [H, W]
  window. XLA:CPU runs a transposed conv as a dense conv over the zero-dilated
  input (4× the multiply-adds); this form does the real work plus the one-pixel
  border ((H+1)(W+1) / HW, ~3% at 64²).

  `interleave=False` returns the phases [B, H, W, 2, 2, F] before depth-to-space,
  so elementwise work (gating) can run on them and the interleave moves less data.
  """

  features: int
  kernel_init: Callable = default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array, interleave: bool = True) -> jax.Array:
    lead, (h, w, cin) = x.shape[:-3], x.shape[-3:]
    x = x.reshape((-1, h, w, cin))
    kernel = self.param("kernel", self.kernel_init, (4, 4, cin, self.features), jnp.float32)
    bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
    kernel, bias = kernel.astype(x.dtype), bias.astype(x.dtype)
    # The border as an explicit pad and a VALID conv: the same function, but XLA:CPU takes the
    # kernel gradient of a conv padded past its input (output (H+1)×(W+1)) on a slow path,
    # ~250× slower at G's sizes (experiments/notes_speed.md, 2026-12-05).
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    z = jax.lax.conv_general_dilated(x, subpixel_kernel(kernel), (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    z = z.reshape(z.shape[:3] + (2, 2, self.features))   # [B, H+1, W+1, a, b, F]
    phases = jnp.stack([jnp.stack([z[:, a:a + h, b:b + w, a, b] for b in (0, 1)], axis=3)
                        for a in (0, 1)], axis=3) + bias  # [B, H, W, a, b, F]
    out = depth_to_space(phases) if interleave else phases
    return out.reshape(lead + out.shape[1:])


def live_taps_conv(lhs, rhs, window_strides, padding, *, rhs_dilation=None,
                   dimension_numbers=None, **kwargs) -> jax.Array:
  """`lax.conv_general_dilated` without the kernel taps that only ever read 'SAME' padding.

  A 3×3 conv of dilation 16 on a 16² map (E's last atrous convs at the paper size) reads
  real pixels with its centre tap only: tap j of an odd kernel (centre c) is offset
  (j - c)·d and misses the map wherever |j - c|·d ≥ size. Those taps multiply zeros, so
  slicing them off (and the padding with them) gives the same output and gradients for
  up to 9× fewer FLOPs. Channel-last inputs and [H, W, I, O] kernels, as `nn.Conv` passes.
  """
  rank = rhs.ndim - 2
  dilation = tuple(rhs_dilation or (1,) * rank)
  if (padding == "SAME" and all(s == 1 for s in window_strides)
      and all(s == 1 for s in kwargs.get("lhs_dilation") or ())
      and all(k % 2 for k in rhs.shape[:rank])):
    keep, live_dilation = [], []
    for k, d, size in zip(rhs.shape[:rank], dilation, lhs.shape[1:1 + rank]):
      r = min(k // 2, (size - 1) // d)  # live taps each side of the centre
      keep.append(slice(k // 2 - r, k // 2 + r + 1))
      live_dilation.append(d if r else 1)  # a single tap: no dilation (XLA's plain 1×1 path)
    rhs, dilation = rhs[tuple(keep)], tuple(live_dilation)
  return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, rhs_dilation=dilation,
                                      dimension_numbers=dimension_numbers, **kwargs)


class GatedConv(nn.Module):
  """Gated convolution (Yu et al., DeepFill v2): `act(f) * sigmoid(g)`.

  One convolution emits `2 * features` channels, split into features `f` and
  gates `g`. DeepFill v2's "gated conv of n channels" is `features = n / 2`;
  ICT-style generators use `features = C` directly. `activation=None` leaves the
  features linear (DeepFill's output layers, the second conv of a residual block).

  `transpose=True` is a 4×4, stride-2, 'SAME' transposed conv (the only
  configuration supported), the function and parameters of
  `nn.ConvTranspose(2 * features, (4, 4), 2, padding='SAME')`, computed in
  sub-pixel form (`SubpixelConvTranspose`), gated before the depth-to-space.
  """

  features: int
  kernel_size: int = 3
  strides: int = 1
  dilation: int = 1
  activation: Callable | None = nn.elu
  transpose: bool = False
  kernel_init: Callable = default_kernel_init
  dtype: Any = None  # computation dtype (None: the input's); parameters stay float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.dtype is not None:
      x = x.astype(self.dtype)
    if self.transpose:
      if (self.kernel_size, self.strides, self.dilation) != (4, 2, 1):
        raise ValueError(
            "GatedConv(transpose=True) supports only kernel_size=4, strides=2, dilation=1 "
            f"(sub-pixel form); got kernel_size={self.kernel_size}, strides={self.strides}, "
            f"dilation={self.dilation}")
      y = SubpixelConvTranspose(2 * self.features, self.kernel_init, name="conv")(
          x, interleave=False)
    else:
      k = (self.kernel_size, self.kernel_size)
      y = nn.Conv(2 * self.features, k, strides=self.strides,
                  kernel_dilation=self.dilation, padding="SAME", kernel_init=self.kernel_init,
                  dtype=self.dtype, conv_general_dilated=live_taps_conv, name="conv")(x)
    f, g = jnp.split(y, 2, axis=-1)
    if self.activation is not None:
      f = self.activation(f)
    y = f * nn.sigmoid(g)
    return depth_to_space(y) if self.transpose else y
