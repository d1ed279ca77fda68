"""The condition encoder E: DeepFill v2's coarse-to-fine gated-conv network.

Re-implemented layer for layer after `build_inpaint_net` (Yu et al., 2019) with
DeepFill's own gated-conv convention (a "gated conv of n channels" returns n/2
features times n/2 gates, ELU). E's job here is not its RGB output but its
feature maps: the flow level at each resolution is conditioned on the last map at
that resolution of the coarse decoder and of the refine decoder, concatenated
(docs/design.md). E also returns its coarse RGB output: the stage-1 model uses it as the
flow's base image in the hole (and may train it with an auxiliary ℓ1, as DeepFill
trains its coarse net); inside E it is pasted into the refine branch's input
without gradient, as DeepFill does.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from flowfill_jax.image_ops import area_downsample
from flowfill_jax.models.layers import GatedConv

# Variance-preserving init for ELU-feature × sigmoid-gate convs: with weights of variance
# 5 / fan_in, unit-variance inputs give unit-variance outputs (E[elu(f)²]·E[σ(g)²] = 1).
# The default 1 / fan_in quarters the variance at every layer, so E's ~25-layer decoder maps
# started at ~1e-7 and the flow, whose subnets end in zero layers, learned as if
# unconditioned (see experiments/notes_encoder_init.md).
GATED_ELU_INIT = nn.initializers.variance_scaling(5.0, "fan_in", "truncated_normal")


def _patches(x: jax.Array, size: int, stride: int) -> jax.Array:
  """[B, H, W, C] → [B, ⌈H/stride⌉, ⌈W/stride⌉, C·size²]: 'SAME' padded patches, channels
  (c, i, j) as `lax.conv_general_dilated_patches` orders them.

  Strided slices, not that function: it is a grouped convolution with a one-hot kernel, and
  its transpose (the overlap-add that pastes patches back) a base-dilated one; XLA:CPU runs
  both on a slow path, each as long as a big convolution. Slices transpose to pads and adds.
  """
  b, h, w, c = x.shape
  out, pads = [], []
  for n in (h, w):
    out.append(-(-n // stride))
    total = max((out[-1] - 1) * stride + size - n, 0)
    pads.append((total // 2, total - total // 2))
  x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  taps = [x[:, i:i + stride * (out[0] - 1) + 1:stride, j:j + stride * (out[1] - 1) + 1:stride]
          for i in range(size) for j in range(size)]
  return jnp.stack(taps, axis=-1).reshape(b, out[0], out[1], c * size * size)


def _diagonal_sum(scores: jax.Array, k: int) -> jax.Array:
  """DeepFill's 'fuse': an identity k×k conv over the [P, Q] score matrix."""
  p = k // 2
  padded = jnp.pad(scores, ((0, 0), (p, p), (p, p)))
  n, m = scores.shape[1:]
  return sum((padded[:, i:i + n, i:i + m] for i in range(k)), jnp.zeros(()))


def _fuse(scores: jax.Array, fh: int, fw: int, bh: int, bw: int, k: int) -> jax.Array:
  """Encourage coherent matches along both image axes (DeepFill v2, `fuse=True`)."""
  b = scores.shape[0]
  scores = _diagonal_sum(scores, k)
  scores = scores.reshape(b, fh, fw, bh, bw).transpose(0, 2, 1, 4, 3)
  scores = _diagonal_sum(scores.reshape(b, fw * fh, bw * bh), k)
  scores = scores.reshape(b, fw, fh, bw, bh).transpose(0, 2, 1, 4, 3)
  return scores.reshape(b, fh * fw, bh * bw)


def contextual_attention(f: jax.Array, b: jax.Array, mask: jax.Array, *, ksize: int = 3,
                         rate: int = 2, fuse_k: int = 3,
                         softmax_scale: float = 10.0) -> jax.Array:
  """Fill the foreground `f` with softly attended patches of the background `b`.

  Matching is on `rate`-downsampled maps with `ksize`² patches; reconstruction
  pastes the matching full-res 2·rate patches back (overlap-add, /4 as DeepFill).
  Background patches that touch the hole (`mask`, 1 = hole) are never attended.
  """
  batch, h, w, c = b.shape
  raw = _patches(b, 2 * rate, rate)                       # [B, h/r, w/r, C·(2r)²]
  f_lr, b_lr = f[:, ::rate, ::rate], b[:, ::rate, ::rate]
  fh, fw = f_lr.shape[1:3]
  bh, bw = b_lr.shape[1:3]
  m_lr = jax.lax.reduce_window(mask, -jnp.inf, jax.lax.max, (1, rate, rate, 1),
                               (1, rate, rate, 1), "SAME")
  touches_hole = jax.lax.reduce_window(m_lr, -jnp.inf, jax.lax.max, (1, ksize, ksize, 1),
                                       (1, 1, 1, 1), "SAME")
  valid = (touches_hole.reshape(batch, 1, bh * bw) == 0).astype(f.dtype)

  fp = _patches(f_lr, ksize, 1).reshape(batch, fh * fw, -1)
  wp = _patches(b_lr, ksize, 1).reshape(batch, bh * bw, -1)
  wp = wp / jnp.maximum(jnp.linalg.norm(wp, axis=-1, keepdims=True), 1e-4)
  scores = jnp.einsum("bpd,bqd->bpq", fp, wp)
  if fuse_k:
    scores = _fuse(scores, fh, fw, bh, bw, fuse_k)
  attention = jax.nn.softmax(scores * valid * softmax_scale, axis=-1) * valid

  pasted = jnp.einsum("bpq,bqd->bpd", attention, raw.reshape(batch, bh * bw, -1))
  _, fold = jax.vjp(lambda t: _patches(t, 2 * rate, rate), jnp.zeros_like(b))
  (out,) = fold(pasted.reshape(raw.shape))
  return out / 4.0


class GatedEncoder(nn.Module):
  """DeepFill v2's inpaint net on [I_m↓, ones, M↓], returning its decoder features.

  Returns `({resolution: features}, coarse)`: for the two decoder resolutions
  (input/2 and input/4) the last coarse-decoder map there concatenated with the
  last refine-decoder map there; and the coarse branch's RGB image in [0, 1] at the
  input's size. `mask` may be fractional (the known share of each pixel).
  """

  cnum: int = 48
  attention_rate: int = 2
  softmax_scale: float = 10.0
  dtype: Any = None  # convs' computation dtype (bf16 on accelerators); outputs in the input's

  @nn.compact
  def __call__(self, masked_image: jax.Array,
               mask: jax.Array) -> tuple[dict[int, jax.Array], jax.Array]:
    cnum = self.cnum
    conv = functools.partial(GatedConv, activation=nn.elu, kernel_init=GATED_ELU_INIT,
                             dtype=self.dtype)

    def gen_conv(n, k=3, stride=1, rate=1, name=None, activation=nn.elu):
      return conv(n // 2, k, stride, rate, activation=activation, name=name)

    def gen_deconv(x, n, name):
      b, h, w, ch = x.shape
      x = jax.image.resize(x, (b, 2 * h, 2 * w, ch), "nearest")
      return gen_conv(n, name=name)(x)

    xin = (masked_image * 2.0 - 1.0) * (1.0 - mask)
    ones = jnp.ones_like(mask)
    x = jnp.concatenate([xin, ones, ones * mask], -1)

    # Coarse network.
    x = gen_conv(cnum, 5, name="conv1")(x)
    x = gen_conv(2 * cnum, 3, 2, name="conv2_downsample")(x)
    x = gen_conv(2 * cnum, name="conv3")(x)
    x = gen_conv(4 * cnum, 3, 2, name="conv4_downsample")(x)
    x = gen_conv(4 * cnum, name="conv5")(x)
    x = gen_conv(4 * cnum, name="conv6")(x)
    for i, rate in enumerate((2, 4, 8, 16)):
      x = gen_conv(4 * cnum, rate=rate, name=f"conv{7 + i}_atrous")(x)
    x = gen_conv(4 * cnum, name="conv11")(x)
    coarse_quarter = x = gen_conv(4 * cnum, name="conv12")(x)
    x = gen_deconv(x, 2 * cnum, "conv13_upsample")
    coarse_half = x = gen_conv(2 * cnum, name="conv14")(x)
    x = gen_deconv(x, cnum, "conv15_upsample")
    x = gen_conv(cnum // 2, name="conv16")(x)
    out_dtype = masked_image.dtype
    coarse_rgb = jnp.tanh(nn.Conv(3, (3, 3), dtype=self.dtype, name="conv17")(x)
                          .astype(out_dtype))

    # Refine network on the coarse result pasted into the hole (no gradient to it).
    xnow = jax.lax.stop_gradient(coarse_rgb) * mask + xin * (1.0 - mask)
    x = gen_conv(cnum, 5, name="xconv1")(xnow)
    x = gen_conv(cnum, 3, 2, name="xconv2_downsample")(x)
    x = gen_conv(2 * cnum, name="xconv3")(x)
    x = gen_conv(2 * cnum, 3, 2, name="xconv4_downsample")(x)
    x = gen_conv(4 * cnum, name="xconv5")(x)
    x = gen_conv(4 * cnum, name="xconv6")(x)
    for i, rate in enumerate((2, 4, 8, 16)):
      x = gen_conv(4 * cnum, rate=rate, name=f"xconv{7 + i}_atrous")(x)
    hallucinated = x

    x = gen_conv(cnum, 5, name="pmconv1")(xnow)
    x = gen_conv(cnum, 3, 2, name="pmconv2_downsample")(x)
    x = gen_conv(2 * cnum, name="pmconv3")(x)
    x = gen_conv(4 * cnum, 3, 2, name="pmconv4_downsample")(x)
    x = gen_conv(4 * cnum, name="pmconv5")(x)
    x = gen_conv(4 * cnum, name="pmconv6", activation=nn.relu)(x)
    mask_quarter = jax.lax.reduce_window(
        mask, -jnp.inf, jax.lax.max, (1, 4, 4, 1), (1, 4, 4, 1), "SAME")
    x = x.astype(out_dtype)  # the attention's softmax in the input's dtype whatever the convs use
    x = contextual_attention(x, x, mask_quarter, rate=self.attention_rate,
                             softmax_scale=self.softmax_scale)
    x = gen_conv(4 * cnum, name="pmconv9")(x)
    x = gen_conv(4 * cnum, name="pmconv10")(x)

    x = jnp.concatenate([hallucinated, x], -1)
    x = gen_conv(4 * cnum, name="allconv11")(x)
    refine_quarter = x = gen_conv(4 * cnum, name="allconv12")(x)
    x = gen_deconv(x, 2 * cnum, "allconv13_upsample")
    refine_half = gen_conv(2 * cnum, name="allconv14")(x)

    size = masked_image.shape[1]
    features = {  # in the input's dtype: they condition the flow, whose bijections use it
        size // 2: jnp.concatenate([coarse_half, refine_half], -1).astype(out_dtype),
        size // 4: jnp.concatenate([coarse_quarter, refine_quarter], -1).astype(out_dtype),
    }
    return features, (coarse_rgb + 1.0) / 2.0


def level_conditions(features: dict, prior_size: int, levels: int) -> list:
  """The condition ft_l of each flow level, at that level's resolution.

  Level l (0-based) runs at prior_size / 2**(l+1); resolutions below E's smallest
  map take that map area-downsampled.
  """
  smallest = min(features)
  conds = []
  for level in range(levels):
    res = prior_size // 2 ** (level + 1)
    conds.append(features[res] if res in features
                 else area_downsample(features[smallest], res))
  return conds
