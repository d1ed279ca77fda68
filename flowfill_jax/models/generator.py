"""The stage-2 texture generator G: ICT's guided upsampler with gated convolutions.

G turns the blurry, texture-free structure prior `I_s` (stage 1's sample, low
resolution) and the masked image into the final completion (paper §3.3, docs/design.md):
an encoder down to H/4, dilated residual blocks there, a decoder back up. Every
conv but the last is a gated conv with ICT's convention (`features` = C, gates
`relu(f) * sigmoid(g)`); there is no normalisation.

The decoder's two ×2 up-convolutions (`upsample`): "transpose" (ICT's, the default),
4×4/2 transposed convs with Flax's default init (their four output phases start
different: a checkerboard G must unlearn); "icnr", the same layers initialised by ICNR
so that G starts without a checkerboard; "resize", nearest-neighbour ×2
then a 3×3 gated conv (Odena et al., 2016; 2.25× the decoder's multiply-adds).

`residual_output` (a deviation from ICT, config `model.texture.residual_output`):
G's last conv starts at zero and adds to the logit of its own input, the bicubic
prior in the hole and the known pixels elsewhere, so G starts as "upsample the
prior" (smooth, the prior's colours) and learns texture as a correction. ICT's G
(`sigmoid(conv)`) must first learn to copy the prior through a bottleneck at the
prior's own resolution; on the demo's 1,000 steps it had not (4×4 blotches).

`skips` (also a deviation, `model.texture.skips`): the stem's full-resolution and
`down_1`'s half-resolution features are concatenated to the decoder's at the same
size, each followed by a 3×3 gated conv (U-Net). Without them the known pixels reach
the output only through the H/4 bottleneck, the prior's own resolution at the
paper's and the demo's sizes, so G cannot use the full-resolution edge of a thin
hole the way classical inpainting does (+20% of G's FLOPs at 256²: 191 → 230 GFLOP).

`smooth_fill_detail` (with `residual_output`; `model.texture.smooth_fill_detail`): in the hole, the
residual base is the bicubic prior plus the high frequencies of `image_ops.smooth_fill`
at full resolution, so where the prior agrees with the fill G starts from the sharp,
full-resolution fill rather than its blurred low-res view (the edges of thin strokes).
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from flowfill_jax import image_ops
from flowfill_jax.models.layers import GatedConv, icnr_init, upsample_nearest

UPSAMPLE = ("icnr", "transpose", "resize")
LOGIT_EPS = 1.0 / 512  # half an 8-bit level: logit(base) stays finite at 0 and 1


class GeneratorOutput(NamedTuple):
  raw: jax.Array        # G's own prediction everywhere, [B, H, W, 3] in [0, 1]
  completed: jax.Array  # I_c: `raw` in the hole, the known pixels untouched


def composite(raw: jax.Array, masked_image: jax.Array, mask: jax.Array) -> jax.Array:
  """`M * raw + (1 - M) * I_m` for a {0, 1} mask, as a select: known pixels bit-exact.

  The arithmetic form lets a non-finite `raw` leak into known pixels (`0 * nan`)
  and flips `-0.0`; a select copies `masked_image` verbatim whatever XLA fuses.
  """
  return jnp.where(mask > 0.5, raw, masked_image)


def smooth_fill_detail(fill: jax.Array, prior_hw: Sequence[Any]) -> jax.Array:
  """The high frequencies of a full-resolution smooth `fill`: the fill minus its own view
  at the prior's size brought back up as the prior is (area down, bicubic up)."""
  low = image_ops.area_downsample(fill, tuple(prior_hw))
  return fill - image_ops.prior_upsample(low, (fill.shape[1], fill.shape[2]))


class ResidualBlock(nn.Module):
  """Dilated gated conv, then a linear gated conv, added back (`x + y`)."""

  features: int
  dilation: int = 2
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = GatedConv(self.features, 3, dilation=self.dilation, activation=nn.relu,
                  dtype=self.dtype)(x)
    y = GatedConv(self.features, 3, activation=None, dtype=self.dtype)(y)
    return x + y


class TextureGenerator(nn.Module):
  """G(I_s↑, I_m, M) → `GeneratorOutput(raw, completed)`, NHWC, images in [0, 1].

  `prior` is the low-res structure prior (any size, e.g. 64²); it is bicubically
  upsampled to the image size here, so callers pass stage 1's output as is.
  The paper size is the default: ~21.6M parameters.
  """

  base_features: int = 64
  num_res_blocks: int = 8
  res_dilation: int = 2
  upsample: str = "transpose"  # "transpose" | "icnr" | "resize" (module docstring)
  residual_output: bool = False  # logit(prior↑ composited) + conv, conv zero-init (docstring)
  skips: bool = False  # U-Net skips: encoder features at H and H/2 join the decoder (docstring)
  smooth_fill_detail: bool = False  # the residual base gets `smooth_fill`'s high frequencies
  smooth_fill_method: str = "biharmonic"  # `image_ops.smooth_fill`'s method for that
  dtype: Any = None  # convs' computation dtype (bf16 on accelerators); output in the input's

  def _up(self, x, features, name):
    """One ×2 up-convolution of the decoder, as `upsample` says."""
    if self.upsample == "resize":
      return GatedConv(features, 3, activation=nn.relu, dtype=self.dtype,
                       name=name)(upsample_nearest(x))
    if self.upsample not in UPSAMPLE:
      raise ValueError(f"model.texture.upsample must be one of {UPSAMPLE}, got {self.upsample!r}")
    init = icnr_init() if self.upsample == "icnr" else GatedConv.kernel_init
    return GatedConv(features, 4, strides=2, transpose=True, activation=nn.relu, name=name,
                     kernel_init=init, dtype=self.dtype)(x)

  @property
  def uses_smooth_fill(self) -> bool:
    return self.residual_output and self.smooth_fill_detail

  def smooth_fill(self, masked_image: jax.Array, mask: jax.Array) -> jax.Array:
    """The full-resolution fill whose detail G's base takes (when `uses_smooth_fill`)."""
    return image_ops.smooth_fill(masked_image, mask, self.smooth_fill_method)

  @nn.compact
  def __call__(self, prior: jax.Array, masked_image: jax.Array, mask: jax.Array,
               fill: jax.Array | None = None) -> GeneratorOutput:
    """`fill`: `smooth_fill(masked_image, mask)` when the caller already has it."""
    b, h, w, _ = masked_image.shape
    prior_up = image_ops.prior_upsample(prior, (h, w))
    x = jnp.concatenate([prior_up, masked_image, mask.astype(masked_image.dtype)], axis=-1)

    c = self.base_features
    gated = lambda n, k, name, **kw: GatedConv(n, k, activation=nn.relu, name=name,
                                               dtype=self.dtype, **kw)
    full = gated(c, 7, "stem")(x)
    half = gated(2 * c, 4, "down_1", strides=2)(full)
    x = gated(4 * c, 4, "down_2", strides=2)(half)
    for i in range(self.num_res_blocks):
      x = ResidualBlock(4 * c, self.res_dilation, dtype=self.dtype, name=f"res_{i}")(x)
    x = self._up(x, 2 * c, "up_1")
    if self.skips:
      x = gated(2 * c, 3, "skip_1")(jnp.concatenate([x, half], axis=-1))
    x = self._up(x, c, "up_2")
    if self.skips:
      x = gated(c, 3, "skip_2")(jnp.concatenate([x, full], axis=-1))
    init = nn.initializers.zeros_init() if self.residual_output else nn.Conv.kernel_init
    logits = nn.Conv(3, (7, 7), padding="SAME", name="to_rgb", kernel_init=init,
                     dtype=self.dtype)(x).astype(masked_image.dtype)
    if self.residual_output:
      base = prior_up
      if self.smooth_fill_detail:
        fill = self.smooth_fill(masked_image, mask) if fill is None else fill
        base = base + smooth_fill_detail(fill, prior.shape[1:3])
      base = composite(base, masked_image, mask)
      logits = logits + jax.scipy.special.logit(jnp.clip(base, LOGIT_EPS, 1.0 - LOGIT_EPS))
    raw = nn.sigmoid(logits)
    return GeneratorOutput(raw, composite(raw, masked_image, mask))
