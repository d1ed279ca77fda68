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


@pytest.mark.parametrize("stage", ["structure", "texture"])
def test_adam_from_config_uses_its_betas_and_schedule(stage):
  """Two Adam steps with gradients +g then -g, checked against Adam's formulas with the
  stage's own b1, b2 and learning rate at each step (stage 1 halves, stage 2 stays)."""
  train_config = base_config()[stage]
  train_config.steps = 4  # stage 1's halvings then fall at steps 2 and 3
  tx, schedule = optim.adam(train_config)
  b1, b2, eps = train_config.b1, train_config.b2, 1e-8
  g = np.array([0.5, -2.0])
  params = {"w": np.zeros(2, np.float32)}
  state = tx.init(params)
  m = v = np.zeros(2)
  for t, grad in enumerate([g, -g, g], start=1):
    updates, state = tx.update({"w": grad}, state, params)
    m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad ** 2
    expected = -float(schedule(t - 1)) * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(updates["w"], expected, rtol=1e-5, err_msg=f"{stage} step {t}")
  assert float(schedule(3)) == pytest.approx(
      train_config.lr / (4 if stage == "structure" else 1))
