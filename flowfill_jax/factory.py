"""Models from a config, and their trained weights from a workdir: written once, here.

Training (`structure_stage`, `texture_stage`), inference and the experiments all build
E + f, G and D through these functions, and read a run's weights through
`load_structure_variables` / `load_generator_params`, which restore only what inference
needs (orbax partial restore: no optimiser state, no D, no training code).
"""

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from flowfill_jax import legacy
from flowfill_jax.checkpoints import StageCheckpoints, abstract_like
from flowfill_jax.errors import UserError
from flowfill_jax.models.discriminator import PatchDiscriminator
from flowfill_jax.models.flow import StructurePrior
from flowfill_jax.models.generator import TextureGenerator
from flowfill_jax.pipeline import TwoStage

COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def compute_dtype(config: ml_collections.ConfigDict) -> Any:
  """E's, G's and D's convolution dtype, `config.model.compute_dtype` (None: float32; runs
  saved before the field existed are float32)."""
  name = config.model.get("compute_dtype", "float32")
  if name not in COMPUTE_DTYPES:
    raise UserError(f"model.compute_dtype {name!r}: expected one of {sorted(COMPUTE_DTYPES)}")
  return COMPUTE_DTYPES[name]


def structure_prior(config: ml_collections.ConfigDict) -> StructurePrior:
  """Stage 1, E and f, as `config.model.structure` describes it."""
  return StructurePrior(**config.model.structure.to_dict(),
                        smooth_fill_method=config.model.smooth_fill_method,
                        encoder_dtype=compute_dtype(config))


def generator(config: ml_collections.ConfigDict) -> TextureGenerator:
  t = config.model.texture
  return TextureGenerator(base_features=t.base_features, num_res_blocks=t.num_res_blocks,
                          upsample=t.upsample, residual_output=t.residual_output, skips=t.skips,
                          smooth_fill_detail=t.smooth_fill_detail,
                          smooth_fill_method=config.model.smooth_fill_method,
                          dtype=compute_dtype(config))


def discriminator(config: ml_collections.ConfigDict) -> PatchDiscriminator:
  t = config.model.texture
  return PatchDiscriminator(features=tuple(t.disc_features), with_mask=t.disc_with_mask,
                            dtype=compute_dtype(config))


def two_stage(config: ml_collections.ConfigDict) -> TwoStage:
  """Both stages as sampling runs them (`model.texture.paste_known_prior` included)."""
  return TwoStage(structure_prior(config), generator(config),
                  paste_known_prior=config.model.texture.paste_known_prior)


def input_shapes(config: ml_collections.ConfigDict, batch: int = 1) -> dict:
  """Abstract `{image, mask}` of a batch at the model's size (for `jax.eval_shape`)."""
  s = config.data.image_size
  return {"image": jax.ShapeDtypeStruct((batch, s, s, 3), jnp.float32),
          "mask": jax.ShapeDtypeStruct((batch, s, s, 1), jnp.float32)}


def _restore(workdir: str, stage: str, abstract: dict, sharding, hint: str) -> dict:
  """The subtree `abstract` ({name: abstract tree}) of `stage`'s latest train state."""
  directory = os.path.join(workdir, stage, "checkpoints")
  checkpoints = StageCheckpoints(directory)
  try:
    if checkpoints.latest_step() is None:
      raise UserError(f"{directory} holds no checkpoint: {hint}")
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.devices()[0])
    try:
      return legacy.restore(checkpoints.restore_subtree, abstract_like(abstract, sharding),
                            checkpoints.saved_tree())
    except (ValueError, KeyError, TypeError) as e:
      raise UserError(f"the checkpoints in {directory} do not match this code's model "
                      f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
  finally:
    checkpoints.close()


def abstract_structure_variables(config: ml_collections.ConfigDict) -> dict:
  """Shapes and dtypes of stage 1's `{'params', 'constants'}` (nothing computed)."""
  x = input_shapes(config)
  return dict(jax.eval_shape(structure_prior(config).init, jax.random.key(0), x["image"],
                             x["image"], x["mask"]))


def abstract_generator_params(config: ml_collections.ConfigDict) -> dict:
  """Shapes and dtypes of G's parameters (nothing computed)."""
  x = input_shapes(config)
  p = config.model.structure.prior_size
  prior = jax.ShapeDtypeStruct((1, p, p, 3), jnp.float32)
  return jax.eval_shape(generator(config).init, jax.random.key(0), prior, x["image"],
                        x["mask"])["params"]


def load_structure_variables(config: ml_collections.ConfigDict, workdir: str,
                             sharding: jax.sharding.Sharding | None = None) -> dict:
  """Stage 1's trained `{'params', 'constants'}` from `workdir/structure`."""
  return _restore(workdir, "structure", abstract_structure_variables(config), sharding,
                  "train stage 1 first (config.stages including 'structure')")


def load_generator_params(config: ml_collections.ConfigDict, workdir: str,
                          sharding: jax.sharding.Sharding | None = None) -> dict:
  """G's trained parameters from `workdir/texture` (nothing of D or the optimisers)."""
  abstract = abstract_generator_params(config)
  return _restore(workdir, "texture", {"g_params": abstract}, sharding,
                  f"train the run first (python -m flowfill_jax.train --config ... "
                  f"--workdir {workdir})")["g_params"]
