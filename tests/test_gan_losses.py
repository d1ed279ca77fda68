"""Stage-2 losses against values worked out by hand, and finite at extreme logits."""

import math

import chex
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized

from flowfill_jax import gan_losses

REAL = jnp.asarray([0.0, 2.0])
FAKE = jnp.asarray([-1.0, 0.0])
softplus = lambda x: math.log1p(math.exp(x))  # -log sigmoid(-x)


class GanLossTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(
      # D: mean(-log σ(real)) + mean(-log(1 - σ(fake))); G: mean(-log σ(fake)).
      ("nonsaturating", "nonsaturating",
       (softplus(0.0) + softplus(-2.0)) / 2 + (softplus(-1.0) + softplus(0.0)) / 2,
       (softplus(1.0) + softplus(0.0)) / 2),
      # D: mean(relu(1 - [0, 2])) + mean(relu(1 + [-1, 0])) = 0.5 + 0.5; G: -mean(fake).
      ("hinge", "hinge", 1.0, 0.5),
  )
  def test_hand_computed_values(self, kind, d_expected, g_expected):
    d_loss = self.variant(lambda r, f: gan_losses.discriminator_loss(r, f, kind))(REAL, FAKE)
    g_loss = self.variant(lambda f: gan_losses.generator_adversarial_loss(f, kind))(FAKE)
    np.testing.assert_allclose(d_loss, d_expected, rtol=1e-6)
    np.testing.assert_allclose(g_loss, g_expected, rtol=1e-6)

  def test_nonsaturating_is_finite_and_linear_at_extreme_logits(self):
    big = jnp.asarray([100.0, -100.0])
    d_loss = gan_losses.discriminator_loss(big, big)
    g_loss = gan_losses.generator_adversarial_loss(big)
    chex.assert_tree_all_finite((d_loss, g_loss))
    np.testing.assert_allclose(d_loss, 100.0, rtol=1e-5)  # (0 + 100)/2 + (100 + 0)/2
    np.testing.assert_allclose(g_loss, 50.0, rtol=1e-5)   # (0 + 100)/2

  @chex.variants(with_jit=True, without_jit=True)
  def test_l1_and_generator_objective(self):
    target = jnp.zeros((1, 2, 2, 3))
    completed = target.at[0, 0, 0, :].set(0.6)  # 1.8 absolute error over 12 values
    total, parts = self.variant(gan_losses.generator_objective)(FAKE, completed, target)
    np.testing.assert_allclose(parts["l1"], 0.15, rtol=1e-6)
    np.testing.assert_allclose(parts["adv"], (softplus(1.0) + softplus(0.0)) / 2, rtol=1e-6)
    np.testing.assert_allclose(total, 0.1 * parts["adv"] + 0.15, rtol=1e-6)
    np.testing.assert_allclose(gan_losses.l1_loss(completed, target), 0.15, rtol=1e-6)

  def test_unknown_kind_is_refused(self):
    with self.assertRaisesRegex(ValueError, "wasserstein"):
      gan_losses.discriminator_loss(REAL, FAKE, kind="wasserstein")
