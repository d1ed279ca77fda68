"""StageCheckpoints: readers create nothing; a saved state restores exactly."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax.checkpoints import StageCheckpoints, abstract_like


def test_reading_a_missing_folder_creates_nothing(tmp_path):
  directory = tmp_path / "run" / "structure" / "checkpoints"
  checkpoints = StageCheckpoints(str(directory))
  assert checkpoints.latest_step() is None
  checkpoints.close()
  assert not os.path.exists(tmp_path / "run")


def test_saved_state_restores_exactly(tmp_path):
  state = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.asarray(7)}
  writer = StageCheckpoints(str(tmp_path / "ckpt"), create=True)
  writer.save(7, state)
  writer.close()
  reader = StageCheckpoints(str(tmp_path / "ckpt"))
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  restored = reader.restore(abstract_like(state, sharding))
  reader.close()
  assert reader.latest_step() == 7
  for k in state:
    np.testing.assert_array_equal(np.asarray(restored[k]), np.asarray(state[k]))
