"""image_ops.smooth_fill: the classical fill stage 1's base starts from (base_fill="smooth")."""

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest

from flowfill_jax import image_ops


def _holes(shape, share, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(size=shape) < share, jnp.float32)


class SmoothFillTest(absltest.TestCase):

  def test_known_pixels_are_kept_exactly(self):
    rng = np.random.default_rng(1)
    image = jnp.asarray(rng.uniform(size=(2, 48, 40, 3)), jnp.float32)
    mask = _holes((2, 48, 40, 1), 0.5)
    filled = np.asarray(image_ops.smooth_fill(image * (1 - mask), mask))
    known = np.asarray(mask)[..., 0] < 0.5
    np.testing.assert_array_equal(filled[known], np.asarray(image)[known])

  def test_fill_stays_within_the_known_values(self):
    """A membrane interpolant obeys the maximum principle: no over- or undershoot."""
    rng = np.random.default_rng(2)
    image = jnp.asarray(rng.uniform(0.2, 0.7, size=(1, 32, 32, 3)), jnp.float32)
    mask = _holes((1, 32, 32, 1), 0.6, seed=3)
    filled = np.asarray(image_ops.smooth_fill(image * (1 - mask), mask))
    self.assertGreaterEqual(filled.min(), 0.2 - 1e-6)
    self.assertLessEqual(filled.max(), 0.7 + 1e-6)

  def test_a_linear_ramp_is_continued_across_a_box_hole(self):
    """A linear function is harmonic: the fill of a hole in a ramp is close to the ramp."""
    ramp = jnp.broadcast_to(jnp.linspace(0.1, 0.9, 64)[None, None, :, None], (1, 64, 64, 3))
    mask = jnp.zeros((1, 64, 64, 1)).at[:, 24:40, 24:40].set(1.0)
    filled = image_ops.smooth_fill(ramp * (1 - mask), mask, smoothing_steps=200)
    self.assertLess(float(jnp.abs(filled - ramp).max()), 0.01)  # a level is 0.0039

  def test_everything_missing_gives_mid_grey(self):
    filled = image_ops.smooth_fill(jnp.zeros((1, 16, 16, 3)), jnp.ones((1, 16, 16, 1)))
    np.testing.assert_allclose(np.asarray(filled), 0.5)


if __name__ == "__main__":
  absltest.main()
