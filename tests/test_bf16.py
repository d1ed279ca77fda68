"""`model.compute_dtype = "bfloat16"`: E's, G's and D's convolutions in bf16, everything the
flow's exactness rests on (its bijections, parameters, optimiser state) in float32."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import box_masks, perturb, real_crops, tiny_config

from flowfill_jax import factory, image_ops
from flowfill_jax.structure_stage import StructureStage, masked
from flowfill_jax.texture_stage import TextureStage

KEY = functools.partial(jax.random.key, impl="rbg")


def _bf16_config():
  config = tiny_config()
  config.model.compute_dtype = "bfloat16"
  return config


def _batch():
  return {"image": jnp.asarray(real_crops(4, 32, seed=5)),
          "mask": jnp.asarray(box_masks(4, 32, seed=5))}


def _all_float32(tree) -> bool:
  return all(x.dtype == jnp.float32 for x in jax.tree.leaves(tree)
             if jnp.issubdtype(x.dtype, jnp.floating))


@pytest.mark.slow
def test_bf16_training_steps_of_both_stages_are_finite_with_float32_state():
  config, batch = _bf16_config(), _batch()
  stage1 = StructureStage(config)
  state = jax.jit(stage1.init)(KEY(0), batch)
  state, metrics = jax.jit(stage1.train_step)(state, batch, KEY(1))
  chex.assert_tree_all_finite((state, metrics))
  assert _all_float32((state.params, state.opt_state))
  frozen = {"params": state.params, "constants": state.constants}
  stage2 = TextureStage(config, workdir="")
  t_state = jax.jit(stage2.init)(KEY(2), batch)
  t_state, t_metrics = jax.jit(stage2.train_step)(t_state, batch, KEY(3), frozen)
  chex.assert_tree_all_finite((t_state, t_metrics))
  assert _all_float32((t_state.g_params, t_state.d_params, t_state.g_opt_state))
  # G's completion comes back float32 with the known pixels exactly the input's.
  priors = jnp.full((4, 8, 8, 3), 0.5)
  out = stage2.two_stage.texture(t_state.g_params, priors, masked(batch), batch["mask"])
  assert out.dtype == jnp.float32
  jaxpr = str(jax.make_jaxpr(stage2.two_stage.texture)(t_state.g_params, priors, masked(batch),
                                                        batch["mask"]))
  assert "conv_general_dilated" in jaxpr and "bf16[4,32,32" in jaxpr  # G's convs run in bf16
  known = np.asarray(batch["mask"]) < 0.5
  np.testing.assert_array_equal(np.asarray(out)[np.broadcast_to(known, out.shape)],
                                np.asarray(masked(batch))[np.broadcast_to(known, out.shape)])


@pytest.mark.slow
def test_flow_round_trip_stays_exact_with_a_bf16_encoder():
  """f⁻¹(f(x)) = x to 1e-4 and the exact density holds: E's bf16 features only condition f."""
  config, batch = _bf16_config(), _batch()
  model = factory.structure_prior(config)
  x = masked(batch)
  variables = perturb(jax.jit(model.init)(KEY(0), batch["image"], x, batch["mask"]), KEY(1),
                      0.05)
  prior = image_ops.area_downsample(batch["image"], 8) - 0.5

  @jax.jit
  def round_trip(v):
    latents, logdet, _ = model.apply(v, prior, x, batch["mask"], method=model.encode)
    back, logdet_inv, _ = model.apply(v, latents, x, batch["mask"], method=model.decode)
    return back, logdet, logdet_inv

  back, logdet, logdet_inv = round_trip(variables)
  assert back.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(back - prior))) <= 1e-4
  np.testing.assert_allclose(logdet_inv, -logdet, rtol=1e-4)
