"""The whole conditional flow and the stage-1 model: exactness, log-det, sampling, NLL."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import box_masks, perturb, real_crops

from flowfill_jax import image_ops
from flowfill_jax.models import condition
from flowfill_jax.models import flow as flow_lib


def _small_flow_inputs(dtype, levels=2, size=8, cond_channels=5, batch=1, seed=0):
  keys = jax.random.split(jax.random.key(seed), levels + 1)
  x = jax.random.uniform(keys[0], (batch, size, size, 3), dtype) - 0.5
  conds = [jax.random.normal(k, (batch, size // 2 ** (i + 1), size // 2 ** (i + 1),
                                 cond_channels), dtype)
           for i, k in enumerate(keys[1:])]
  return x, conds


# Every stage-1 deviation from the paper switched on (config fields; all off = the paper).
DEVIATIONS = dict(residual=True, lowres_condition=True, cond_norm=True, learn_top=True,
                  mask_mode="fraction", scale_fn="exp")


def _small_model(**overrides):
  cfg = dict(prior_size=16, levels=2, steps=2, hidden=8, encoder_cnum=8, scan_unroll=1)
  cfg.update(overrides)
  return flow_lib.StructurePrior(**cfg)


@pytest.mark.slow
class ConditionalFlowTest(chex.TestCase):

  def test_logdet_matches_jacobian(self):
    with jax.enable_x64(True):
      flow = flow_lib.ConditionalFlow(levels=2, steps=2, hidden=8, scan_unroll=1)
      x, conds = _small_flow_inputs(jnp.float64)
      variables = flow.init(jax.random.key(1), x, conds, method=flow.forward)
      variables = perturb(jax.tree.map(lambda a: a.astype(jnp.float64), variables),
                          jax.random.key(2), 0.1)

      def f(flat):
        latents, _, _ = flow.apply(variables, flat.reshape(x.shape), conds,
                                   method=flow.forward)
        return flow_lib.flatten_latents(latents)[0]

      jac = jax.jit(jax.jacfwd(f))(x.reshape(-1))
      self.assertEqual(jac.shape, (192, 192))
      _, expected = jnp.linalg.slogdet(jac)
      _, logdet, _ = flow.apply(variables, x, conds, method=flow.forward)
      np.testing.assert_allclose(float(logdet[0]), float(expected), rtol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_round_trip_and_inverse_logdet(self):
    flow = flow_lib.ConditionalFlow(levels=2, steps=3, hidden=16, scan_unroll=1)
    x, conds = _small_flow_inputs(jnp.float32, levels=2, size=8, batch=2)
    variables = perturb(flow.init(jax.random.key(1), x, conds, method=flow.forward),
                        jax.random.key(2), 0.05)
    fwd = self.variant(lambda v, x, c: flow.apply(v, x, c, method=flow.forward))
    inv = self.variant(lambda v, z, c: flow.apply(v, z, c, method=flow.inverse))
    latents, logdet, logp = fwd(variables, x, conds)
    x_back, logdet_inv, logp_inv = inv(variables, latents, conds)
    self.assertLessEqual(float(jnp.max(jnp.abs(x - x_back))), 1e-4)
    np.testing.assert_allclose(logdet_inv, -logdet, rtol=1e-4)
    np.testing.assert_allclose(logp_inv, logp, rtol=1e-4)
    self.assertEqual([z.shape[1:] for z in latents], flow_lib.latent_shapes(8, 2))

  def test_latent_layout_at_paper_size(self):
    shapes = flow_lib.latent_shapes(64, 4)
    self.assertEqual([int(np.prod(s)) for s in shapes], [6144, 3072, 1536, 1536])
    flat = jax.random.normal(jax.random.key(0), (2, 3 * 64 * 64))
    latents = flow_lib.unflatten_latents(flat, 64, 4)
    np.testing.assert_array_equal(flow_lib.flatten_latents(latents), flat)


@pytest.mark.slow
class StructurePriorTest(chex.TestCase):

  def test_paper_size_round_trip(self):
    """L=4, K=10, 64×64 prior, E at cnum 48: f⁻¹(f(x)) = x to 1e-4 in float32.

    The steps run as a rolled scan (same arithmetic as unrolled, ~5× less compile time).
    """
    model = flow_lib.StructurePrior(scan_unroll=1)  # otherwise the paper's sizes (defaults)
    images = jnp.asarray(real_crops(2, 128))
    masks = jnp.asarray(box_masks(2, 128))
    masked = images * (1 - masks)
    variables = perturb(jax.jit(model.init)(jax.random.key(0), images, masked, masks),
                        jax.random.key(1), 0.02)
    prior = jax.image.resize(images, (2, 64, 64, 3), "linear", antialias=True) - 0.5

    @jax.jit
    def round_trip(v):
      latents, logdet, _ = model.apply(v, prior, masked, masks, method=model.encode)
      back, logdet_inv, _ = model.apply(v, latents, masked, masks, method=model.decode)
      return back, logdet, logdet_inv

    back, logdet, logdet_inv = round_trip(variables)
    err = float(jnp.max(jnp.abs(back - prior)))
    print(f"paper-size round trip max|x - f^-1(f(x))| = {err:.3g}")
    self.assertLessEqual(err, 1e-4)
    np.testing.assert_allclose(logdet_inv, -logdet, rtol=1e-4)

  @chex.variants(with_jit=True, without_jit=True)
  def test_samples_shape_finite_and_seeded(self):
    model = _small_model()
    images = jnp.asarray(real_crops(3, 32))
    masks = jnp.asarray(box_masks(3, 32))
    masked = images * (1 - masks)
    variables = perturb(model.init(jax.random.key(0), images, masked, masks),
                        jax.random.key(1), 0.05)
    sample = self.variant(
        lambda v, r: model.apply(v, r, masked, masks, 0.8, method=model.sample))
    a = sample(variables, jax.random.key(5))
    b = sample(variables, jax.random.key(6))
    a_again = sample(variables, jax.random.key(5))
    chex.assert_shape(a, (3, 16, 16, 3))
    chex.assert_tree_all_finite(a)
    self.assertTrue(bool(jnp.all((a >= 0) & (a <= 1))))
    self.assertGreater(float(jnp.mean(jnp.abs(a - b))), 1e-3)
    np.testing.assert_array_equal(a, a_again)

  def test_nll_of_real_crops_and_gradient_finite(self):
    model = _small_model(scan_unroll=0)  # the default, unrolled path
    images = jnp.asarray(real_crops(4, 32))
    masks = jnp.asarray(box_masks(4, 32))
    masked = images * (1 - masks)
    variables = model.init(jax.random.key(0), images, masked, masks)

    def loss(params):
      bpd = model.apply({**variables, "params": params}, images, masked, masks,
                        jax.random.key(3))
      return jnp.mean(bpd), bpd

    (value, bpd), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
    chex.assert_shape(bpd, (4,))
    chex.assert_tree_all_finite((value, grads))
    self.assertGreater(float(value), 0.0)
    self.assertLess(float(value), 16.0)
    self.assertGreater(float(optax.tree.norm(grads)), 0.0)


@pytest.mark.slow
def test_standardized_latents_round_trip():
  """ε-coordinates (what sampling and stage-2 noise use) decode back to the same prior."""
  model = _small_model()
  images = jnp.asarray(real_crops(2, 32))
  masks = jnp.asarray(box_masks(2, 32))
  masked = images * (1 - masks)
  variables = perturb(model.init(jax.random.key(0), images, masked, masks), jax.random.key(1))
  prior = jax.image.resize(images, (2, 16, 16, 3), "linear", antialias=True) - 0.5
  eps, _, _ = model.apply(variables, prior, masked, masks, standardized=True,
                          method=model.encode)
  back, _, _ = model.apply(variables, eps, masked, masks, standardized=True,
                           method=model.decode)
  np.testing.assert_allclose(back, prior, atol=1e-4)


@pytest.mark.slow
def test_conditions_carry_signal_at_init():
  """E's decoder maps sit ~25 gated convs deep: with a variance-preserving init they start
  at a usable scale and differ between images (the default init left them at ~1e-7)."""
  model = _small_model(prior_size=32)
  images = jnp.asarray(real_crops(4, 64, seed=2))
  masks = jnp.asarray(box_masks(4, 64, seed=2))
  masked = images * (1 - masks)
  variables = model.init(jax.random.key(0), images, masked, masks)
  conds = model.apply(variables, masked, masks, method=model.conditions)
  for cond in conds.levels:
    assert float(jnp.std(cond)) > 1e-2
    assert float(jnp.std(cond, axis=0).mean()) > 1e-3  # they depend on the input


@pytest.mark.slow
@pytest.mark.parametrize("deviations", [False, True], ids=["paper", "deviations"])
def test_sample_log_prob_equals_log_prob_of_the_sample(deviations):
  """The density returned with a sample is the model's density at that sample (τ 0.5–1), for
  every sample in the data range (one outside it is −inf)."""
  model = _small_model(**(DEVIATIONS if deviations else {}))
  images = jnp.asarray(real_crops(3, 32, seed=4))
  masks = jnp.asarray(box_masks(3, 32, seed=4))
  masked = images * (1 - masks)
  variables = perturb(model.init(jax.random.key(0), images, masked, masks), jax.random.key(1))
  sample = jax.jit(lambda tau: model.apply(variables, jax.random.key(2), masked, masks, tau,
                                           method=model.sample_and_log_prob))
  log_prob_of = jax.jit(lambda prior: model.apply(variables, prior, masked, masks,
                                                  method=model.log_prob))
  for temperature in (0.5, 0.8, 1.0):
    prior, log_prob = sample(temperature)
    usable = np.asarray(flow_lib.usable_priors(prior))  # the rest: −inf (test below)
    np.testing.assert_array_equal(np.isneginf(log_prob), ~usable)
    np.testing.assert_allclose(log_prob[usable], log_prob_of(prior)[usable], rtol=1e-4)


def test_num_samples_per_input_equal_samples_of_the_repeated_inputs():
  """`num` > 1 runs E once per input: the priors and densities are those of the inputs
  repeated num times (input-major) with the same key."""
  model = _small_model(**DEVIATIONS)
  images = jnp.asarray(real_crops(2, 32, seed=5))
  masks = jnp.asarray(box_masks(2, 32, seed=5))
  masked = images * (1 - masks)
  variables = jax.jit(model.init)(jax.random.key(0), images, masked, masks)
  key = jax.random.key(3)
  sample = jax.jit(functools.partial(model.apply, method=model.sample_and_log_prob),
                   static_argnums=(5,))
  prior, log_prob = sample(variables, key, masked, masks, 0.8, 3)
  rep = lambda x: jnp.repeat(x, 3, axis=0)
  prior_rep, log_prob_rep = sample(variables, key, rep(masked), rep(masks), 0.8, 1)
  assert prior.shape == (6, 16, 16, 3)
  np.testing.assert_allclose(prior, prior_rep, atol=1e-5)
  np.testing.assert_allclose(log_prob, log_prob_rep, rtol=1e-5)


# The shipped model's combination: every deviation, sigmoid scales, the smooth fill as base.
SHIPPED = dict(DEVIATIONS, scale_fn="sigmoid", hole_base="smooth", lowres_width=4)


@pytest.mark.slow
@pytest.mark.parametrize("fields", [{}, DEVIATIONS, dict(DEVIATIONS, lowres_width=4), SHIPPED],
                         ids=["paper", "deviations", "deviations_projected_lowres", "shipped"])
def test_log_prob_equals_brute_force_change_of_variables(fields):
  """log p(x) = log N(ε; 0, I) + log|det ∂ε/∂x|, with ε the standardised latents and the
  Jacobian by jax.jacfwd (float64): checks the flow, split and top priors and the shift."""
  with jax.enable_x64(True):
    model = _small_model(prior_size=8, levels=2, steps=1, hidden=4, **fields)
    images = jnp.asarray(real_crops(1, 16, seed=5), jnp.float64)
    masks = jnp.asarray(box_masks(1, 16, seed=5), jnp.float64)
    masked = images * (1 - masks)
    variables = jax.jit(model.init)(jax.random.key(0), images, masked, masks)
    variables = perturb(jax.tree.map(lambda a: a.astype(jnp.float64), variables),
                        jax.random.key(1), 0.1)
    x = image_ops.area_downsample(images, 8)

    def eps_of(flat):
      eps, _, _ = model.apply(variables, flat.reshape(x.shape) - 0.5, masked, masks,
                              standardized=True, method=model.encode)
      return flow_lib.flatten_latents(eps)[0]

    @jax.jit  # one compilation (eager float64 dispatch of every op was most of this test)
    def both():
      eps = eps_of(x.reshape(-1))
      _, logdet = jnp.linalg.slogdet(jax.jacfwd(eps_of)(x.reshape(-1)))
      brute = jnp.sum(jax.scipy.stats.norm.logpdf(eps)) + logdet
      return model.apply(variables, x, masked, masks, method=model.log_prob)[0], brute

    log_prob, brute = both()
    np.testing.assert_allclose(float(log_prob), float(brute), rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [0.1, 0.02])
def test_a_sample_log_prob_is_the_log_prob_of_the_sample_or_minus_inf(scale):
  """With every deviation on and the parameters perturbed (float64), each sample's density is
  `log_prob` of it, or −inf for a sample outside PRIOR_RANGE; never a finite figure that
  `log_prob` would not give. Perturbed by 0.1, f⁻¹ overflows (priors of 1e6–1e15): all −inf;
  by 0.02 the samples stay in range and their densities are checked."""
  with jax.enable_x64(True):
    model = _small_model(**SHIPPED)
    images = jnp.asarray(real_crops(4, 32, seed=7), jnp.float64)
    masks = jnp.asarray(box_masks(4, 32, seed=7), jnp.float64)
    masked = images * (1 - masks)
    variables = jax.jit(model.init)(jax.random.key(0), images, masked, masks)
    variables = perturb(jax.tree.map(lambda a: a.astype(jnp.float64), variables),
                        jax.random.key(1), scale)

    @jax.jit
    def sample_and_recompute(key, temperature):
      prior, log_prob = model.apply(variables, key, masked, masks, temperature, 4,
                                    method=model.sample_and_log_prob)
      rep = lambda x: jnp.repeat(x, 4, axis=0)
      return prior, log_prob, model.apply(variables, prior, rep(masked), rep(masks),
                                          method=model.log_prob)

    usable_count = 0
    for seed, temperature in enumerate((0.5, 1.0)):
      prior, log_prob, recomputed = sample_and_recompute(jax.random.key(seed), temperature)
      usable = np.asarray(flow_lib.usable_priors(prior))
      np.testing.assert_array_equal(np.isneginf(log_prob), ~usable)
      np.testing.assert_allclose(log_prob[usable], recomputed[usable], rtol=1e-6)
      usable_count += int(usable.sum())
    assert usable_count == (0 if scale == 0.1 else 32)


def test_base_image_is_exact_on_fully_known_low_res_pixels():
  images = jnp.asarray(real_crops(2, 32, seed=6))
  masks = jnp.asarray(box_masks(2, 32, seed=6))
  low = condition.lowres_views(images * (1 - masks), masks, 8)
  coarse = jnp.full((2, 8, 8, 3), 0.3)
  base = condition.base_image(low, coarse) + 0.5
  truth = image_ops.area_downsample(images, 8)
  known = low.hole[..., 0] == 0
  assert bool(known.any()) and bool((~known).any())
  np.testing.assert_allclose(base[known], truth[known], atol=1e-6)
  fully_missing = low.known[..., 0] == 0
  np.testing.assert_allclose(base[fully_missing], 0.3, atol=1e-6)
