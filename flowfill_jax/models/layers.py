"""Layers shared by the networks of both stages."""

from collections.abc import Callable, Sequence
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


def interleave_phases(phases: Sequence[Sequence[jax.Array]]) -> jax.Array:
  """Phases `[[p00, p01], [p10, p11]]`, each [B, H, W, C] → [B, 2H, 2W, C], out[2m + a, 2n + b] = p_ab[m, n].

  Stacked straight into [B, H, 2, W, 2, C], whose reshape to [B, 2H, 2W, C] moves no data.
  """
  rows = [jnp.stack(row, axis=-2) for row in phases]      # a: [B, H, W, 2, C]
  out = jnp.stack(rows, axis=-4)                           # [B, H, 2, W, 2, C]
  *lead, h, _, w, _, c = out.shape
  return out.reshape((*lead, 2 * h, 2 * w, c))


class SubpixelConvTranspose(nn.Module):
  """`nn.ConvTranspose(features, (4, 4), strides=2, padding='SAME')` in sub-pixel form.

  Same parameters (`kernel` [4, 4, Cin, F], `bias` [F], same initialisers) and the
  same function. XLA:CPU runs a transposed conv as a dense conv over the zero-dilated
  input (4× the multiply-adds); here each output phase (a, b) is its own 2×2 VALID conv
  with taps `kernel[a::2, b::2]` over the input padded by (1 - a, a) × (1 - b, b)
  (`subpixel_kernel` derives the taps), so only the real work is done, and the four
  phase maps are interleaved once at the end.

  `phase_fn` runs on each phase map before the interleave, so elementwise work that
  follows the conv (gating, which halves the channels) moves less data. Per-phase convs
  with explicit pads, rather than one conv to 4·F channels sliced into phases: 25–35%
  faster at G's decoder sizes on XLA:CPU, and the kernel gradient of a conv padded past
  its input is on a slow path there (experiments/notes_speed.md, 2026-12-05).
  """

  features: int
  kernel_init: Callable = default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array,
               phase_fn: Callable[[jax.Array], jax.Array] = lambda y: y) -> jax.Array:
    lead, (h, w, cin) = x.shape[:-3], x.shape[-3:]
    x = x.reshape((-1, h, w, cin))
    kernel = self.param("kernel", self.kernel_init, (4, 4, cin, self.features), jnp.float32)
    bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
    kernel, bias = kernel.astype(x.dtype), bias.astype(x.dtype)

    def phase(a: int, b: int) -> jax.Array:
      padded = jnp.pad(x, ((0, 0), (1 - a, a), (1 - b, b), (0, 0)))
      y = jax.lax.conv_general_dilated(padded, kernel[a::2, b::2], (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
      return phase_fn(y + bias)

    out = interleave_phases([[phase(a, b) for b in (0, 1)] for a in (0, 1)])
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
  sub-pixel form (`SubpixelConvTranspose`), each phase gated before the interleave.
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
      return SubpixelConvTranspose(2 * self.features, self.kernel_init, name="conv")(
          x, phase_fn=self._gate)
    k = (self.kernel_size, self.kernel_size)
    y = nn.Conv(2 * self.features, k, strides=self.strides,
                kernel_dilation=self.dilation, padding="SAME", kernel_init=self.kernel_init,
                dtype=self.dtype, conv_general_dilated=live_taps_conv, name="conv")(x)
    return self._gate(y)

  def _gate(self, y: jax.Array) -> jax.Array:
    """`act(f) * sigmoid(g)` over the two halves of the conv's channels."""
    f, g = jnp.split(y, 2, axis=-1)
    if self.activation is not None:
      f = self.activation(f)
    return f * nn.sigmoid(g)

