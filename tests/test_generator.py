"""Texture generator G: shapes, paper size, exact compositing, a decoder without
checkerboard at init. (Its training: tests/test_texture_stage.py.)"""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized
from conftest import perturb

from flowfill_jax.models.generator import TextureGenerator, composite
from flowfill_jax.models.layers import icnr_init, subpixel_kernel

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


class UpsampleInitTest(chex.TestCase):
  """ICNR (and resize-conv) start without a checkerboard; the default init does not."""

  def test_icnr_kernel_has_four_equal_phases(self):
    kernel = icnr_init()(KEY(0), (4, 4, 5, 6))
    phases = np.asarray(subpixel_kernel(kernel)).reshape(2, 2, 5, 2, 2, 6)  # [dy, dx, C, a, b, F]
    for a, b in ((0, 1), (1, 0), (1, 1)):
      np.testing.assert_array_equal(phases[..., a, b, :], phases[..., 0, 0, :])
    self.assertGreater(float(np.std(phases)), 0.0)

  @parameterized.parameters(("icnr", True), ("resize", True), ("transpose", False))
  def test_constant_input_gives_phase_equal_output(self, upsample, flat):
    """Constant inputs make every feature map constant away from the borders, until the
    ×2 up-convs: there, an output that differs between the 2×2 (and 4×4) phases is the
    checkerboard (1.7e-4 with the default init here).
    Checked on G's raw output, 40 px in from a 128² image's edges."""
    s = 128
    g = TextureGenerator(**TINY, upsample=upsample)
    inputs = (jnp.full((1, 32, 32, 3), 0.3), jnp.full((1, s, s, 3), 0.6), jnp.zeros((1, s, s, 1)))
    variables = jax.jit(g.init)(KEY(0), *inputs)
    raw = np.asarray(jax.jit(g.apply)(variables, *inputs).raw[0, 40:-40, 40:-40])
    spread = np.abs(raw - raw[:1, :1]).max()
    if flat:
      self.assertLess(spread, 1e-6)  # exactly 0 on CPU; 1e-6 leaves room for conv algorithms
    else:
      self.assertGreater(spread, 1e-5)

  def test_residual_output_starts_at_the_upsampled_prior(self):
    """With `residual_output`, an untrained G returns the bicubic prior in the hole and the
    known pixels elsewhere (up to the logit's clip at half an 8-bit level)."""
    g = TextureGenerator(**TINY, residual_output=True)
    priors, masked, masks = _inputs(2, 32, 32, (8, 8), seed=2)
    variables = jax.jit(g.init)(KEY(0), priors, masked, masks)
    raw = np.asarray(jax.jit(g.apply)(variables, priors, masked, masks).raw)
    up = np.clip(np.asarray(jax.image.resize(priors, (2, 32, 32, 3), "bicubic")), 1 / 512,
                 1 - 1 / 512)
    expected = np.where(np.asarray(masks) > 0.5, up, np.clip(np.asarray(masked), 1 / 512,
                                                              1 - 1 / 512))
    np.testing.assert_allclose(raw, expected, atol=1e-5)

  def test_smooth_fill_detail_base_is_the_smooth_fill_where_the_prior_agrees_with_it(self):
    """With `smooth_fill_detail`, an untrained G given the fill's own low-res view as its prior returns
    the full-resolution smooth fill in the hole (the detail adds back what the prior lacks)."""
    from flowfill_jax import image_ops
    g = TextureGenerator(**TINY, residual_output=True, smooth_fill_detail=True)
    _, masked, masks = _inputs(2, 32, 32, (8, 8), seed=3)
    fill = image_ops.smooth_fill(masked, masks)
    prior = image_ops.area_downsample(fill, 8)
    variables = jax.jit(g.init)(KEY(0), prior, masked, masks)
    raw = np.asarray(jax.jit(g.apply)(variables, prior, masked, masks).raw)
    hole = np.asarray(masks)[..., 0] > 0.5
    expected = np.clip(np.asarray(fill), 1 / 512, 1 - 1 / 512)
    np.testing.assert_allclose(raw[hole], expected[hole], atol=1e-5)

  def test_a_given_fill_gives_the_output_of_the_fill_g_computes_itself(self):
    """Callers that already have the input's smooth fill (one per input, not per sample)
    pass it; G's output is the same as when G computes it."""
    g = TextureGenerator(**TINY, residual_output=True, smooth_fill_detail=True)
    prior, masked, masks = _inputs(2, 32, 32, (8, 8), seed=5)
    variables = perturb(jax.jit(g.init)(KEY(0), prior, masked, masks), KEY(1))
    own = g.apply(variables, prior, masked, masks).raw
    given = g.apply(variables, prior, masked, masks, g.smooth_fill(masked, masks)).raw
    np.testing.assert_allclose(np.asarray(given), np.asarray(own), atol=1e-6)

  def test_a_non_finite_prior_gives_a_finite_completion(self):
    """A sampled prior that overflowed f⁻¹ (NaN/inf) reaches G clipped, NaN as grey."""
    from flowfill_jax.pipeline import TwoStage
    g, variables = _tiny_generator()
    priors, masked, masks = _inputs(2, 32, 32, (8, 8), seed=4)
    priors = priors.at[0, 2, 3].set(jnp.nan).at[1, 4, 4].set(jnp.inf)
    out = TwoStage(None, g).generate(variables["params"], priors, masked, masks)
    chex.assert_tree_all_finite(out)
    known = np.asarray(masks)[..., 0] < 0.5
    np.testing.assert_array_equal(np.asarray(out.completed)[known], np.asarray(masked)[known])
