"""Runs saved in the old parameter layout (each flow step's own condition convs) still load
and compute what they computed then.

`data/structure_prior_v1.msgpack` was written by the code of that layout: a small stage-1
model with every deviation on (perturbed off its init), inputs, and its log densities and
samples.
"""

import functools
import pathlib

import jax
import numpy as np
import optax
from flax import serialization

from flowfill_jax import legacy
from flowfill_jax.checkpoints import StageCheckpoints, abstract_like
from flowfill_jax.models import bijectors
from flowfill_jax.models.flow import StructurePrior
from flowfill_jax.structure_stage import StructureState

FIXTURE = pathlib.Path(__file__).parent / "data" / "structure_prior_v1.msgpack"
MODEL = StructurePrior(prior_size=8, levels=2, steps=2, hidden=8, encoder_cnum=4,
                       mask_mode="fraction", residual=True, hole_base="smooth",
                       lowres_condition=True, lowres_width=4, cond_norm=True, learn_top=True)


@functools.cache
def _fixture():
  return serialization.msgpack_restore(FIXTURE.read_bytes())


def _shapes(tree):
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(p): tuple(np.shape(x)) for p, x in leaves}


def _abstract():
  f = _fixture()
  return jax.eval_shape(MODEL.init, jax.random.key(0), f["images"], f["images"], f["masks"])


def test_upgraded_old_parameters_give_the_old_densities_and_samples(monkeypatch):
  """Same figures as the old code's, its unbounded prior scales included (the soft clamp of
  log σ, added since, moves the perturbed fixture's densities by ~1%)."""
  monkeypatch.setattr(bijectors, "soft_clamp", lambda x, *_: x)
  f = _fixture()
  variables = legacy.upgrade(f["variables"])
  assert _shapes(variables) == _shapes(_abstract())
  masked = f["images"] * (1 - f["masks"])
  log_prob = jax.jit(functools.partial(MODEL.apply, method=MODEL.log_prob))(
      variables, f["prior"], masked, f["masks"])
  sample = jax.jit(functools.partial(MODEL.apply, method=MODEL.sample_and_log_prob),
                   static_argnums=(5,))
  samples, sample_log_prob = sample(variables, jax.random.key(2), masked, f["masks"], 0.8, 2)
  # float32, and the one conv of a level sums in another order than the old per-step convs
  np.testing.assert_allclose(log_prob, f["log_prob"], rtol=2e-4)
  # float32 f⁻¹ rounds differently on other CPUs (the fixture was made on an AVX-512 Xeon; an
  # AMD EPYC differs by up to 1.3e-4); a layout mistake moves samples by far more.
  np.testing.assert_allclose(samples, f["samples"], atol=5e-4)
  np.testing.assert_allclose(sample_log_prob, f["sample_log_prob"], rtol=2e-4)


def test_old_layout_of_the_new_shapes_is_the_saved_layout():
  assert _shapes(legacy.old_layout(_abstract())) == _shapes(_fixture()["variables"])


def test_upgrade_leaves_new_layout_trees_alone():
  variables = legacy.upgrade(_fixture()["variables"])
  again = legacy.upgrade(variables)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), variables, again))


def test_an_old_layout_checkpoint_restores_upgraded(tmp_path):
  old = jax.tree.map(np.asarray, _fixture()["variables"])
  checkpoints = StageCheckpoints(str(tmp_path / "checkpoints"), create=True)
  checkpoints.save(5, {"params": old["params"], "constants": old["constants"], "step": 5})
  checkpoints.close()
  checkpoints = StageCheckpoints(str(tmp_path / "checkpoints"))  # a reader, as inference opens
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = abstract_like(dict(_abstract()), sharding)
  restored = legacy.restore(checkpoints.restore_subtree, abstract, checkpoints.saved_tree())
  checkpoints.close()
  expected = legacy.upgrade(old)
  assert _shapes(restored) == _shapes(expected)
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_an_old_layout_train_state_resumes_upgraded(tmp_path):
  """Training resumes an old run: its stage-1 state (parameters and Adam's moments shaped like
  them) restores onto this code's state, upgraded."""
  old = jax.tree.map(np.asarray, _fixture()["variables"])
  tx = optax.adam(1e-3)
  moments = jax.tree.map(lambda p: np.full_like(p, 0.5) + p, old["params"])
  old_opt = jax.tree.map(np.asarray, tx.init(old["params"]))
  old_opt = (old_opt[0]._replace(mu=moments, nu=moments), *old_opt[1:])
  state = StructureState(step=np.int32(7), params=old["params"], constants=old["constants"],
                         opt_state=old_opt)
  writer = StageCheckpoints(str(tmp_path / "checkpoints"), create=True)
  writer.save(7, state)
  writer.close()
  new = legacy.upgrade(_fixture()["variables"])
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = abstract_like(StructureState(step=np.int32(0), params=new["params"],
                                          constants=new["constants"],
                                          opt_state=tx.init(new["params"])), sharding)
  reader = StageCheckpoints(str(tmp_path / "checkpoints"))
  restored = legacy.restore(reader.restore, abstract, reader.saved_tree())
  reader.close()
  assert int(restored.step) == 7
  expected = legacy.upgrade(moments)
  for a, b in zip(jax.tree.leaves(restored.opt_state[0].mu), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for a, b in zip(jax.tree.leaves(restored.params), jax.tree.leaves(new["params"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
