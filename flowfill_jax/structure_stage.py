"""Stage 1 training: E and f trained together on the NLL of I_s = I_gt↓ (paper eq. 4),
plus `coarse_l1_weight` × the ℓ1 of E's coarse output (its RGB head, as DeepFill trains E)."""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import NamedSharding

from flowfill_jax import factory, image_ops, optim, visualize


class StructureState(flax.struct.PyTreeNode):
  step: jax.Array
  params: Any  # flax variable dicts (dict or FrozenDict)
  constants: Any  # the fixed soft-permutation matrices (never trained)
  opt_state: optax.OptState


def masked(batch: dict) -> jax.Array:
  return batch["image"] * (1.0 - batch["mask"])


class StructureStage:
  """The pieces the generic loop in `train.py` needs for stage 1."""

  name = "structure"
  loss_name = "bits_per_dim"

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.stage_config = config.structure
    self.model = factory.structure_prior(config)
    self.tx, self.schedule = optim.adam(self.stage_config)

  def frozen_variables(self, sharding: NamedSharding | None) -> None:
    """Nothing is frozen in stage 1."""
    return None

  def init(self, key: jax.Array, batch: dict) -> StructureState:
    """Data-dependent init (ActNorm) on the first training batch."""
    variables = self.model.init(key, batch["image"], masked(batch), batch["mask"])
    params = variables["params"]
    return StructureState(step=jnp.zeros((), jnp.int32), params=params,
                          constants=variables["constants"], opt_state=self.tx.init(params))

  def _losses(self, params, constants, batch, rng):
    return self.model.apply({"params": params, "constants": constants}, batch["image"],
                            masked(batch), batch["mask"], rng, method=self.model.losses)

  def train_step(self, state: StructureState, batch: dict, key: jax.Array,
                 frozen: dict | None = None) -> tuple[StructureState, dict]:
    rng = jax.random.fold_in(key, state.step)
    weight = self.stage_config.coarse_l1_weight

    def loss_fn(params):
      terms = jax.tree.map(jnp.mean, self._losses(params, state.constants, batch, rng))
      return terms["bits_per_dim"] + weight * terms["coarse_l1"], terms

    (_, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(step=state.step + 1,
                              params=optax.apply_updates(state.params, updates),
                              opt_state=opt_state)
    return new_state, {**terms, "grad_norm": optax.tree.norm(grads),
                       "lr": self.schedule(state.step)}

  def eval_step(self, state: StructureState, batch: dict, key: jax.Array,
                frozen: dict | None = None) -> Any:
    """Per-example validation bits/dim (fixed dequantisation noise) and coarse ℓ1."""
    return self._losses(state.params, state.constants, batch, key)

  def sample_rows(self, state: StructureState, batch: dict, key: jax.Array,
                  frozen: dict | None = None) -> list:
    """Columns of the sample sheet: masked input, samples at τ, ground truth (prior size)."""
    variables = {"params": state.params, "constants": state.constants}
    size = self.model.prior_size
    mask_lr = image_ops.mask_downsample(batch["mask"], size)
    shown_input = visualize.grey_holes(image_ops.area_downsample(masked(batch), size), mask_lr)
    samples = [self.model.apply(variables, k, masked(batch), batch["mask"],
                                self.config.sample.temperature, method=self.model.sample)
               for k in jax.random.split(key, self.stage_config.num_samples)]
    truth = image_ops.area_downsample(batch["image"], size)
    return [shown_input, *samples, truth]
