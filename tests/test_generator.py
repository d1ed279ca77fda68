"""Texture generator G: shapes, paper size, exact compositing, and a tiny G+D training run."""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from conftest import box_masks, real_crops
from flowfill_jax import gan_losses
from flowfill_jax.image_ops import area_downsample
from flowfill_jax.models.discriminator import PatchDiscriminator
from flowfill_jax.models.generator import TextureGenerator, composite

TINY = dict(base_features=8, num_res_blocks=1)
# XLA:CPU compiles threefry's unrolled hash slowly (init: ~11 s vs ~1.7 s with "rbg").
KEY = functools.partial(jax.random.key, impl="rbg")


def _inputs(batch, h, w, prior_hw, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.uniform(size=(batch, h, w, 3)).astype(np.float32)
  masks = (rng.uniform(size=(batch, h, w, 1)) < 0.4).astype(np.float32)
  priors = rng.uniform(size=(batch, *prior_hw, 3)).astype(np.float32)
  return jnp.asarray(priors), jnp.asarray(images * (1 - masks)), jnp.asarray(masks)


@functools.cache
def _tiny_generator():
  """One tiny G and its variables for every test (parameters do not depend on H, W)."""
  g = TextureGenerator(**TINY)
  return g, jax.jit(g.init)(KEY(0), *_inputs(1, 32, 32, (8, 8)))


class GeneratorTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_shapes_and_range(self):
    g, variables = _tiny_generator()
    for h, w, prior_hw in ((32, 32, (8, 8)), (32, 48, (8, 12))):
      priors, masked, masks = _inputs(2, h, w, prior_hw)
      out = self.variant(g.apply)(variables, priors, masked, masks)
      chex.assert_shape([out.raw, out.completed], (2, h, w, 3))
      chex.assert_tree_all_finite(out)
      self.assertTrue(bool(jnp.all((out.raw >= 0) & (out.raw <= 1))))

  def test_paper_size_parameter_count(self):
    """SPEC: ~21.6M parameters (counted from shapes only, nothing allocated)."""
    g = TextureGenerator()
    shapes = jax.eval_shape(g.init, KEY(0), jnp.zeros((1, 64, 64, 3)),
                            jnp.zeros((1, 256, 256, 3)), jnp.zeros((1, 256, 256, 1)))
    n = sum(math.prod(p.shape) for p in jax.tree.leaves(shapes["params"]))
    self.assertBetween(n, 21.5e6, 21.7e6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_known_pixels_come_back_bit_exact(self):
    g, variables = _tiny_generator()
    priors, masked, masks = _inputs(3, 32, 32, (8, 8), seed=1)
    out = self.variant(g.apply)(variables, priors, masked, masks)
    known = np.broadcast_to(np.asarray(masks) == 0, masked.shape)
    self.assertTrue(0 < known.mean() < 1)
    self.assertTrue(np.array_equal(np.asarray(out.completed)[known], np.asarray(masked)[known]))
    np.testing.assert_array_equal(np.asarray(out.completed)[~known], np.asarray(out.raw)[~known])

  def test_composite_keeps_known_pixels_even_next_to_nan(self):
    raw = jnp.full((1, 2, 2, 3), jnp.nan)
    masked = jnp.asarray([-0.0, 0.1, 0.7, 1.0]).reshape(1, 2, 2, 1) * jnp.ones(3)
    mask = jnp.asarray([0.0, 0.0, 0.0, 1.0]).reshape(1, 2, 2, 1)
    out = np.asarray(composite(raw, masked, mask)).reshape(4, 3)
    np.testing.assert_array_equal(out[:3], np.asarray(masked).reshape(4, 3)[:3])
    self.assertTrue(np.signbit(out[0, 0]))
    self.assertTrue(np.isnan(out[3]).all())


class TinyAdversarialTrainingTest(chex.TestCase):
  """A D step then a G step (eq. 10) on four real 32² crops: ℓ1 must fall.

  Adam(1e-3, b1=0.5) instead of the paper's Adam(1e-4, b1=0) so that 80 steps
  (~2 s) are enough: G learns to follow its prior into the hole, taking the ℓ1 of
  the composite from ~0.025 to below ~0.007 (the bicubic prior itself: 0.005).
  b1=0.5 is the usual GAN momentum (DCGAN). D's power iteration advances in D's
  step, on real and fake together; G's step reads the updated `u` unchanged.
  """

  def test_l1_falls(self):
    images = jnp.asarray(real_crops(4, 32, seed=3))
    masks = jnp.asarray(box_masks(4, 32, seed=3))
    masked, priors = images * (1 - masks), area_downsample(images, 8)
    g, g_vars = _tiny_generator()
    d = PatchDiscriminator(features=(8, 16, 32, 32))
    g_params = g_vars["params"]
    d_vars = jax.jit(functools.partial(d.init, update_stats=False))(KEY(1), images)
    tx = optax.adam(1e-3, b1=0.5)
    state = (g_params, d_vars["params"], d_vars["batch_stats"], tx.init(g_params),
             tx.init(d_vars["params"]))

    @jax.jit
    def step(state):
      g_params, d_params, d_stats, g_opt, d_opt = state
      completed = g.apply({"params": g_params}, priors, masked, masks).completed

      def d_loss_fn(d_params):
        both = jnp.concatenate([images, jax.lax.stop_gradient(completed)])
        logits, updates = d.apply({"params": d_params, "batch_stats": d_stats}, both,
                                  update_stats=True, mutable=["batch_stats"])
        real, fake = jnp.split(logits, 2)
        return gan_losses.discriminator_loss(real, fake), updates["batch_stats"]

      (d_loss, d_stats), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
      d_updates, d_opt = tx.update(d_grads, d_opt, d_params)
      d_params = optax.apply_updates(d_params, d_updates)

      def g_loss_fn(g_params):
        completed = g.apply({"params": g_params}, priors, masked, masks).completed
        logits = d.apply({"params": d_params, "batch_stats": d_stats}, completed,
                         update_stats=False)
        return gan_losses.generator_objective(logits, completed, images)

      (_, parts), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g_params)
      g_updates, g_opt = tx.update(g_grads, g_opt, g_params)
      g_params = optax.apply_updates(g_params, g_updates)
      return (g_params, d_params, d_stats, g_opt, d_opt), {"d": d_loss, **parts}

    history = []
    for _ in range(80):
      state, metrics = step(state)
      history.append(metrics)
    chex.assert_tree_all_finite(history)
    l1 = [float(m["l1"]) for m in history]
    self.assertLess(np.mean(l1[-5:]), 0.4 * l1[0])
