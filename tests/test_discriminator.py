"""PatchGAN discriminator D: logit-map shape, and spectral norm's power iteration."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized

from flowfill_jax.models.discriminator import PatchDiscriminator

KEY = functools.partial(jax.random.key, impl="rbg")  # fast to compile on XLA:CPU
SMALL = dict(features=(8, 16, 32, 64))


@functools.cache
def _discriminator(with_mask: bool):
  """A small D and its variables, shared by the tests (they do not depend on H, W)."""
  d = PatchDiscriminator(**SMALL, with_mask=with_mask, power_iterations=5)
  image, mask = jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 8, 8, 1))
  return d, jax.jit(functools.partial(d.init, update_stats=False))(KEY(0), image, mask)


class DiscriminatorTest(parameterized.TestCase):

  @parameterized.parameters(False, True)
  def test_logit_map_shape(self, with_mask):
    d, variables = _discriminator(with_mask)
    self.assertEqual(variables["params"]["conv_0"]["kernel"].shape[2], 3 + with_mask)
    image = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 32, 48, 3)), jnp.float32)
    mask = jnp.zeros((2, 32, 48, 1))
    logits = jax.jit(functools.partial(d.apply, update_stats=False))(variables, image, mask)
    chex.assert_shape(logits, (2, 4, 6, 1))
    chex.assert_tree_all_finite(logits)

  def test_spectral_norm_top_singular_value_near_one(self):
    """After a few power iterations every kernel is divided by its top singular value."""
    d, variables = _discriminator(False)
    image = jnp.asarray(np.random.default_rng(1).uniform(size=(1, 16, 16, 3)), jnp.float32)
    scaled = lambda v, c: {**v, "params": {k: {**p, "kernel": c * p["kernel"]}
                                           for k, p in v["params"].items()}}
    variables = scaled(variables, 4.0)  # raw kernels far from unit norm

    @jax.jit
    def power_step(variables):
      _, updates = d.apply(variables, image, update_stats=True, mutable=["batch_stats"])
      return {**variables, **updates}

    frozen = jax.jit(functools.partial(d.apply, update_stats=False, mutable=["batch_stats"]))
    _, unchanged = frozen(variables, image)
    chex.assert_trees_all_equal(unchanged["batch_stats"], variables["batch_stats"])

    for _ in range(10):
      variables = power_step(variables)
    for i, conv in enumerate(variables["params"].values()):
      kernel = np.asarray(conv["kernel"])
      top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
      sigma = float(variables["batch_stats"][f"sn_{i}"][f"conv_{i}/kernel/sigma"])
      self.assertGreater(top, 3.0)
      np.testing.assert_allclose(top / sigma, 1.0, rtol=0.02)  # kernel / sigma: top s.v. ≈ 1

    # D sees only normalised kernels: rescaling them leaves the logits unchanged.
    logits, _ = frozen(variables, image)
    logits_rescaled, _ = frozen(scaled(variables, 0.1), image)
    np.testing.assert_allclose(logits_rescaled, logits, rtol=1e-4, atol=1e-5)
