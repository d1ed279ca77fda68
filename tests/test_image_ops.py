"""image_ops.smooth_fill: the classical fill under stage 1's base and G's fill detail."""

import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from flowfill_jax import image_ops

METHODS = [("harmonic", "harmonic"), ("biharmonic", "biharmonic")]


def _holes(shape, share, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(size=shape) < share, jnp.float32)


def _box(size, lo, hi):
  return jnp.zeros((1, size, size, 1)).at[:, lo:hi, lo:hi].set(1.0)


class SmoothFillTest(parameterized.TestCase):

  @parameterized.named_parameters(*METHODS)
  def test_known_pixels_are_kept_exactly(self, method):
    rng = np.random.default_rng(1)
    image = jnp.asarray(rng.uniform(size=(2, 48, 40, 3)), jnp.float32)
    mask = _holes((2, 48, 40, 1), 0.5)
    filled = np.asarray(image_ops.smooth_fill(image * (1 - mask), mask, method))
    known = np.asarray(mask)[..., 0] < 0.5
    np.testing.assert_array_equal(filled[known], np.asarray(image)[known])

  def test_the_membrane_stays_within_the_known_values(self):
    """A harmonic fill obeys the maximum principle: no over- or undershoot."""
    rng = np.random.default_rng(2)
    image = jnp.asarray(rng.uniform(0.2, 0.7, size=(1, 32, 32, 3)), jnp.float32)
    mask = _holes((1, 32, 32, 1), 0.6, seed=3)
    filled = np.asarray(image_ops.smooth_fill(image * (1 - mask), mask, "harmonic"))
    self.assertGreaterEqual(filled.min(), 0.2 - 1e-6)
    self.assertLessEqual(filled.max(), 0.7 + 1e-6)

  def test_the_thin_plate_stays_within_the_image_range(self):
    """A thin plate may overshoot its known values; the fill is clipped to [0, 1]."""
    rng = np.random.default_rng(2)
    image = jnp.asarray(rng.choice([0.0, 1.0], size=(1, 32, 32, 3)), jnp.float32)
    mask = _holes((1, 32, 32, 1), 0.6, seed=3)
    filled = np.asarray(image_ops.smooth_fill(image * (1 - mask), mask, "biharmonic"))
    self.assertGreaterEqual(filled.min(), 0.0)
    self.assertLessEqual(filled.max(), 1.0)

  @parameterized.named_parameters(*METHODS)
  def test_a_linear_ramp_is_continued_across_a_box_hole(self, method):
    """A linear function is harmonic and biharmonic: both fills continue it."""
    ramp = jnp.broadcast_to(jnp.linspace(0.1, 0.9, 64)[None, None, :, None], (1, 64, 64, 3))
    mask = _box(64, 24, 40)
    filled = image_ops.smooth_fill(ramp * (1 - mask), mask, method, iterations=200)
    self.assertLess(float(jnp.abs(filled - ramp).max()), 0.01)  # a level is 0.0039

  def test_the_thin_plate_continues_a_paraboloid_that_the_membrane_flattens(self):
    """x² + y² has a constant Laplacian, so Δ² = 0: biharmonic, not harmonic."""
    grid = jnp.linspace(-1.0, 1.0, 48)
    bowl = 0.1 + 0.4 * (grid[:, None] ** 2 + grid[None, :] ** 2)
    image = jnp.broadcast_to(bowl[None, :, :, None], (1, 48, 48, 3))
    mask = _box(48, 14, 34)
    error = {m: float(jnp.abs(image_ops.smooth_fill(image * (1 - mask), mask, m,
                                                    iterations=300) - image).max())
             for m in ("harmonic", "biharmonic")}
    self.assertLess(error["biharmonic"], 0.004)
    self.assertGreater(error["harmonic"], 0.03)

  @parameterized.named_parameters(*METHODS)
  def test_everything_missing_gives_mid_grey(self, method):
    filled = image_ops.smooth_fill(jnp.zeros((1, 16, 16, 3)), jnp.ones((1, 16, 16, 1)), method)
    np.testing.assert_allclose(np.asarray(filled), 0.5)

  def test_each_image_is_filled_as_if_alone(self):
    """CG's inner products are per image: a batch-mate does not change a fill."""
    rng = np.random.default_rng(4)
    image = jnp.asarray(rng.uniform(size=(3, 32, 32, 3)), jnp.float32)
    mask = _holes((3, 32, 32, 1), 0.4, seed=5)
    together = image_ops.smooth_fill(image * (1 - mask), mask)
    alone = image_ops.smooth_fill(image[1:2] * (1 - mask[1:2]), mask[1:2])
    np.testing.assert_allclose(np.asarray(together[1:2]), np.asarray(alone), atol=1e-5)

  def test_an_unknown_method_is_refused(self):
    with self.assertRaisesRegex(ValueError, "biharmonic"):
      image_ops.smooth_fill(jnp.zeros((1, 8, 8, 3)), jnp.ones((1, 8, 8, 1)), "telea")


if __name__ == "__main__":
  absltest.main()
