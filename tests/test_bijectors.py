"""Every bijector: exact round trip, log-det against jacfwd, inverse log-det = −forward."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized
from conftest import perturb

from flowfill_jax.models import bijectors

COND_CHANNELS = 16  # a flow step's condition: 2·hidden (hidden=8 below)

BIJECTORS = {
    "actnorm": lambda: bijectors.ActNorm(),
    "soft_permutation": lambda: bijectors.SoftPermutation(),
    "affine_sigmoid": lambda: bijectors.ConditionalAffine(hidden=8),
    "affine_exp": lambda: bijectors.ConditionalAffine(hidden=8, scale_fn="exp", clamp=2.0),
    "flow_step": lambda: bijectors.FlowStep(hidden=8),
    "squeeze": lambda: bijectors.Squeeze(),
}


def _setup(name, shape, dtype=jnp.float32, seed=0):
  key_x, key_c, key_init, key_p = jax.random.split(jax.random.key(seed), 4)
  x = jax.random.normal(key_x, shape, dtype) * 0.7 + 0.3
  cond = jax.random.normal(key_c, shape[:-1] + (COND_CHANNELS,), dtype)
  bij = BIJECTORS[name]()
  variables = bij.init(key_init, x, cond, method=bij.forward)
  variables = jax.tree.map(lambda a: a.astype(dtype), variables)
  return bij, perturb(variables, key_p, 0.1), x, cond


class BijectorTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*[(n, n) for n in BIJECTORS])
  def test_round_trip_and_logdet_sign(self, name):
    bij, variables, x, cond = _setup(name, (3, 8, 8, 4))
    fwd = self.variant(lambda v, x, c: bij.apply(v, x, c, method=bij.forward))
    inv = self.variant(lambda v, y, c: bij.apply(v, y, c, method=bij.inverse))
    y, logdet_f = fwd(variables, x, cond)
    x_back, logdet_i = inv(variables, y, cond)
    chex.assert_shape(logdet_f, (3,))
    self.assertLessEqual(float(jnp.max(jnp.abs(x - x_back))), 1e-4)
    np.testing.assert_allclose(logdet_i, -logdet_f, rtol=1e-5, atol=1e-5)
    if name not in ("soft_permutation", "squeeze"):
      self.assertGreater(float(jnp.max(jnp.abs(y - x))) if y.shape == x.shape else 1.0, 1e-3)

  @parameterized.named_parameters(*[(n, n) for n in BIJECTORS])
  def test_logdet_matches_jacobian(self, name):
    with jax.enable_x64(True):
      bij, variables, x, cond = _setup(name, (1, 2, 2, 4), jnp.float64, seed=1)

      def f(flat):
        y, _ = bij.apply(variables, flat.reshape(x.shape), cond, method=bij.forward)
        return y.reshape(-1)

      jac = jax.jit(jax.jacfwd(f))(x.reshape(-1))
      sign, expected = jnp.linalg.slogdet(jac)
      _, logdet = bij.apply(variables, x, cond, method=bij.forward)
      self.assertEqual(float(sign) != 0, True)
      np.testing.assert_allclose(float(logdet[0]), float(expected), rtol=1e-5, atol=1e-8)

  def test_soft_permutation_is_orthogonal_and_not_trained(self):
    bij, variables, x, cond = _setup("soft_permutation", (2, 4, 4, 6))
    self.assertFalse(variables.get("params"))
    w = variables["constants"]["weight"]
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-5)
    loss = lambda c: jnp.sum(bij.apply({"constants": c}, x, cond, method=bij.forward)[0] ** 2)
    self.assertEqual(float(jnp.abs(jax.grad(loss)(variables["constants"])["weight"]).max()), 0.0)

  def test_actnorm_data_dependent_init(self):
    x = jax.random.normal(jax.random.key(0), (16, 8, 8, 3)) * 3.0 + 2.0
    bij = bijectors.ActNorm()
    variables = bij.init(jax.random.key(1), x, None, method=bij.forward)
    y, _ = bij.apply(variables, x, None, method=bij.forward)
    np.testing.assert_allclose(jnp.mean(y, axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(y, axis=(0, 1, 2)), 1.0, atol=1e-4)

  def test_affine_scales_stay_in_unit_interval(self):
    raw = jnp.linspace(-50.0, 50.0, 11)[:, None].repeat(2, axis=1)
    scale, log_scale, _ = bijectors.scale_and_shift(raw, "sigmoid", 3.0)
    self.assertTrue(bool(jnp.all((scale > 0) & (scale <= 1.0 + 1e-4))))
    np.testing.assert_allclose(jnp.log(scale), log_scale, rtol=1e-6)

  def test_split_round_trip_and_prior(self):
    split = bijectors.Split()
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 8))
    cond = jax.random.normal(jax.random.key(1), (2, 4, 4, COND_CHANNELS))
    variables = perturb(split.init(jax.random.key(2), x, cond, method=split.forward),
                        jax.random.key(3), 0.3)
    kept, z, logp = split.apply(variables, x, cond, method=split.forward)
    x_back, logp_back = split.apply(variables, kept, z, cond, method=split.inverse)
    np.testing.assert_array_equal(x, x_back)
    np.testing.assert_allclose(logp, logp_back, rtol=1e-6)
    # Standardised latents: ε and (z - mean)/σ are the same point.
    mean, log_scale = split.apply(variables, kept, cond, method=split.prior)
    eps = (z - mean) * jnp.exp(-log_scale)
    x_std, _ = split.apply(variables, kept, eps, cond, standardized=True, method=split.inverse)
    np.testing.assert_allclose(x_std, x, atol=1e-5)
