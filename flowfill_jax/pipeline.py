"""Both stages as one function: masked image + mask + key → N completions (paper eq. 7).

    z ~ N(0, τ²I);  I_s = f⁻¹(z; E(I_m↓));  I_c = G(I_s↑, I_m)

The N samples of each input run as one batch through both stages, so a single
jitted call does all the work; the building block of sampling and evaluation.
"""

import jax
import jax.numpy as jnp
import ml_collections

from flowfill_jax.models.flow import StructurePrior
from flowfill_jax.models.generator import TextureGenerator


def build_generator(config: ml_collections.ConfigDict) -> TextureGenerator:
  t = config.model.texture
  return TextureGenerator(base_features=t.base_features, num_res_blocks=t.num_res_blocks)


class TwoStage:
  """Holds the two modules; `complete` is pure in its variables and jit-friendly."""

  def __init__(self, structure: StructurePrior, generator: TextureGenerator):
    self.structure = structure
    self.generator = generator

  def priors(self, structure_vars, masked_image, mask, key, num: int, temperature: float):
    """[B·num, P, P, 3] structural priors in [0, 1], input-major (b0s0, b0s1, …), and
    their exact log densities [B·num]."""
    masked_rep = jnp.repeat(masked_image, num, axis=0)
    mask_rep = jnp.repeat(mask, num, axis=0)
    return self.structure.apply(structure_vars, key, masked_rep, mask_rep, temperature,
                                method=self.structure.sample_and_log_prob)

  def texture(self, generator_params, priors, masked_image, mask):
    """Stage 2 on given priors ([B·num, …], or [B, …] when num = 1) → composited I_c."""
    num = priors.shape[0] // masked_image.shape[0]
    masked_rep = jnp.repeat(masked_image, num, axis=0)
    mask_rep = jnp.repeat(mask, num, axis=0)
    return self.generator.apply({"params": generator_params}, priors, masked_rep,
                                mask_rep).completed

  def complete(self, structure_vars, generator_params, masked_image, mask, key, *,
               num: int = 1, temperature: float = 0.8):
    """→ (completions [B, num, H, W, 3], priors [B, num, P, P, 3], log p(prior) [B, num]).

    Known pixels of the completions are exactly those of `masked_image`.
    """
    priors, log_prob = self.priors(structure_vars, masked_image, mask, key, num, temperature)
    out = self.texture(generator_params, priors, masked_image, mask)
    b = masked_image.shape[0]
    return (out.reshape((b, num) + out.shape[1:]), priors.reshape((b, num) + priors.shape[1:]),
            log_prob.reshape(b, num))
