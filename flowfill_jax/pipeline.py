"""Both stages as one function: masked image + mask + key → N completions (paper eq. 7).

    z ~ N(0, τ²I);  I_s = f⁻¹(z; E(I_m↓));  I_c = G(I_s↑, I_m)

The N samples of each input run as one batch through both stages, so a single
jitted call does all the work; the building block of sampling and evaluation.
`TwoStage.generate` is where G's input is formed, for training and sampling alike.
"""

from typing import cast

import jax
import jax.numpy as jnp

from flowfill_jax import image_ops
from flowfill_jax.models.flow import StructurePrior, usable_priors
from flowfill_jax.models.generator import GeneratorOutput, TextureGenerator


def paste_known_prior(priors: jax.Array, masked_image: jax.Array, mask: jax.Array) -> jax.Array:
  """The prior with every fully known low-res pixel replaced by `I_m↓`'s.

  A low-res pixel is fully known when none of its high-res pixels is a hole
  (`mask_downsample`, any-hole); there `area_downsample(I_m)` is the ground truth's
  low-res pixel (exactly, when H is a multiple of P), which the flow's sample only
  approximates. G then sees the same known context at sampling as at training,
  whatever noise the prior carries.
  Shapes: priors [B, P, P, 3], masked_image [B, H, W, 3], mask [B, H, W, 1].
  """
  p = priors.shape[1]
  known = image_ops.mask_downsample(mask, p) < 0.5
  return jnp.where(known, image_ops.area_downsample(masked_image, p), priors)


class TwoStage:
  """Holds the two modules; `sample_completions` is pure in its variables and jit-friendly.

  `paste_known_prior` (config `model.texture.paste_known_prior`): G's input prior gets the
  known low-res pixels of `I_m↓` (`paste_known_prior` above). Only G's input: the priors
  `sample_completions` returns, and their log densities, are the flow's samples as drawn.
  """

  def __init__(self, structure: StructurePrior, generator: TextureGenerator,
               paste_known_prior: bool = False):
    self.structure = structure
    self.generator = generator
    self.paste_known_prior = paste_known_prior

  def priors(self, structure_vars: dict, masked_image: jax.Array, mask: jax.Array,
             key: jax.Array, num: int, temperature: float) -> tuple[jax.Array, jax.Array]:
    """[B·num, P, P, 3] structural priors (image units, not clipped), input-major
    (b0s0, b0s1, …), and their exact log densities [B·num]."""
    return cast(tuple, self.structure.apply(structure_vars, key, masked_image, mask,
                                            temperature, num,
                                            method=self.structure.sample_and_log_prob))

  def generate(self, generator_params: dict, priors: jax.Array, masked_image: jax.Array,
               mask: jax.Array) -> GeneratorOutput:
    """G on given priors ([B·num, …], or [B, …] when num = 1) → (raw, completed).

    The one place G's input is formed (training and sampling): inputs repeated to
    the priors' batch, the known prior pixels pasted when configured.
    """
    num = priors.shape[0] // masked_image.shape[0]
    masked_rep = jnp.repeat(masked_image, num, axis=0)
    mask_rep = jnp.repeat(mask, num, axis=0)
    fill_rep = None  # the smooth fill under G's base: once per input, not per sample
    if self.generator.uses_smooth_fill:
      fill_rep = jnp.repeat(self.generator.smooth_fill(masked_image, mask), num, axis=0)
    priors = self.generator_prior(priors, masked_rep, mask_rep)
    return cast(GeneratorOutput, self.generator.apply({"params": generator_params}, priors,
                                                      masked_rep, mask_rep, fill_rep))

  def generator_prior(self, priors: jax.Array, masked_image: jax.Array,
                      mask: jax.Array) -> jax.Array:
    """The prior as G receives it, inputs already at the priors' batch: clipped to [0, 1] (the
    flow's samples are unclipped, for exact densities), known pixels pasted if configured. A
    sample that is not `usable_priors` (f⁻¹ overflowed; its log density is −inf) is replaced
    by the smooth fill's low-res view, computed only when a batch has one."""
    usable = usable_priors(priors)[:, None, None, None]
    priors = jax.lax.cond(
        jnp.all(usable), lambda: priors,
        lambda: jnp.where(usable, priors, image_ops.area_downsample(
            self.generator.smooth_fill(masked_image, mask), priors.shape[1])))
    priors = jnp.clip(priors, 0.0, 1.0)
    if self.paste_known_prior:
      priors = paste_known_prior(priors, masked_image, mask)
    return priors

  def texture(self, generator_params: dict, priors: jax.Array, masked_image: jax.Array,
              mask: jax.Array) -> jax.Array:
    """Stage 2 on given priors ([B·num, …], or [B, …] when num = 1) → composited I_c."""
    return self.generate(generator_params, priors, masked_image, mask).completed

  def sample_completions(self, structure_vars: dict, generator_params: dict,
                         masked_image: jax.Array, mask: jax.Array, key: jax.Array, *,
                         num: int = 1, temperature: float = 0.8
                         ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """→ (completions [B, num, H, W, 3], priors [B, num, P, P, 3], log p(prior) [B, num]).

    Known pixels of the completions are exactly those of `masked_image`.
    """
    priors, log_prob = self.priors(structure_vars, masked_image, mask, key, num, temperature)
    out = self.texture(generator_params, priors, masked_image, mask)
    b = masked_image.shape[0]
    return (out.reshape((b, num) + out.shape[1:]), priors.reshape((b, num) + priors.shape[1:]),
            log_prob.reshape(b, num))
