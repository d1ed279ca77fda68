"""The paper's learning-rate schedule: halved at 50/75/90/95% of the steps."""

import numpy as np
import pytest

from flowfill_jax import optim
from flowfill_jax.config_base import base_config


@pytest.mark.parametrize("total", [1000, 300_000])
def test_halving_schedule_boundaries(total):
  schedule = optim.halving_schedule(5e-4, total)
  expect = [(0, 5e-4), (total // 2 - 1, 5e-4), (total // 2, 2.5e-4),
            (int(0.75 * total) - 1, 2.5e-4), (int(0.75 * total), 1.25e-4),
            (int(0.9 * total) - 1, 1.25e-4), (int(0.9 * total), 6.25e-5),
            (int(0.95 * total) - 1, 6.25e-5), (int(0.95 * total), 3.125e-5),
            (total - 1, 3.125e-5)]
  for step, lr in expect:
    np.testing.assert_allclose(float(schedule(step)), lr, rtol=1e-6, err_msg=f"step {step}")


def test_paper_optimisers_from_config():
  config = base_config()
  assert (config.structure.lr, config.structure.b1, config.structure.b2) == (5e-4, 0.9, 0.999)
  assert (config.texture.lr, config.texture.b1, config.texture.b2) == (1e-4, 0.0, 0.9)
  _, schedule = optim.adam(config.texture)
  assert float(schedule(0)) == float(schedule(config.texture.steps - 1)) == 1e-4
  _, schedule = optim.adam(config.structure)
  assert float(schedule(config.structure.steps - 1)) == pytest.approx(5e-4 / 16)
