"""Stage 2's training step as `train.py` runs it (`TextureStage.train_step`), on the tiny
config: ICT's loss set-up, D's learning rate, and the prior pasting at G's input."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import box_masks, real_crops, tiny_config

from flowfill_jax import image_ops
from flowfill_jax.errors import UserError
from flowfill_jax.models import vgg
from flowfill_jax.models.generator import GeneratorOutput, TextureGenerator, composite
from flowfill_jax.pipeline import TwoStage, paste_known_prior
from flowfill_jax.structure_stage import StructureStage, masked
from flowfill_jax.texture_stage import TextureStage

# XLA:CPU compiles threefry's unrolled hash slowly; every key below derives from these.
KEY = functools.partial(jax.random.key, impl="rbg")


@pytest.fixture(scope="module")
def structure_vars():
  """Stage 1's variables at init (data-dependent), frozen for stage 2, and the batch."""
  batch = {"image": jnp.asarray(real_crops(4, 32, seed=3)),
           "mask": jnp.asarray(box_masks(4, 32, seed=3))}
  s_state = jax.jit(StructureStage(tiny_config()).init)(KEY(0), batch)
  return {"params": s_state.params, "constants": s_state.constants}, batch


def _stage(config, batch):
  stage = TextureStage(config, workdir="")
  return stage, jax.jit(stage.init)(KEY(1), batch), jax.jit(stage.train_step)


@pytest.mark.slow
def test_one_step_with_every_option_is_finite_and_moves_d_at_its_rate(structure_vars):
  """ICT's ℓ1 and D rate, VGG perceptual and style losses, pasted priors, ICNR decoder;
  `frozen` as `TextureStage.frozen_variables` gives it (the VGG weights beside stage 1's)."""
  config = tiny_config()
  t = config.texture
  t.perceptual_weight, t.style_weight = 0.1, 250.0
  assert (t.l1_mode, t.d_lr_ratio) == ("raw_hole_normalized", 0.1)
  assert config.model.texture.paste_known_prior
  assert config.model.texture.upsample == "icnr"
  frozen, batch = structure_vars
  batch = jax.tree.map(lambda x: x[:2], batch)  # VGG runs 4 images per example
  stage, state, step = _stage(config, batch)
  new, metrics = step(state, batch, KEY(2), {**frozen, "vgg": vgg.load_params(stage.vgg.layers)})
  chex.assert_tree_all_finite((new, metrics))
  assert {"l1", "perceptual", "style", "g_adv", "g_loss", "d_loss", "lr", "d_lr"} <= set(metrics)
  assert metrics["perceptual"] > 0 and metrics["style"] > 0
  # Adam(b1=0) moves every parameter by lr·g/(|g| + eps) on its first step: at most lr.
  lr = stage.stage_config.lr
  moved = lambda a, b: max(float(jnp.abs(x - y).max()) for x, y in
                           zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  np.testing.assert_allclose(moved(new.g_params, state.g_params), lr, rtol=1e-3)
  np.testing.assert_allclose(moved(new.d_params, state.d_params), 0.1 * lr, rtol=1e-3)
  np.testing.assert_allclose(metrics["d_lr"], 0.1 * lr, rtol=1e-6)


@pytest.mark.slow
def test_training_steps_lower_l1(structure_vars):
  """60 steps on four real 32² crops (~2 s once compiled): an ICT G (`sigmoid(conv)`, no
  residual base, which would start it at its answer's neighbourhood) learns to follow its prior
  and the known pixels; ICT's hole-normalised ℓ1 falls from ~1.8 (tiny config: lr 1e-3)."""
  frozen, batch = structure_vars
  config = tiny_config()
  config.model.texture.residual_output = False
  config.model.texture.smooth_fill_detail = False
  _, state, step = _stage(config, batch)
  history = []
  for _ in range(60):
    state, metrics = step(state, batch, KEY(2), frozen)
    history.append(metrics)
  chex.assert_tree_all_finite(history)
  l1 = [float(m["l1"]) for m in history]
  assert np.mean(l1[-10:]) < 0.75 * np.mean(l1[:3]), l1


def test_d_learning_rate_is_a_fraction_of_gs():
  """One Adam step with known gradients: G's update is -lr·sign(g), D's -0.1·lr·sign(g)."""
  config = tiny_config()
  config.texture.lr, config.texture.d_lr_ratio = 2e-3, 0.25
  stage = TextureStage(config, workdir="")
  params = {"w": jnp.zeros(3)}
  grads = {"w": jnp.asarray([1.0, -2.0, 0.5])}
  for tx, lr in ((stage.g_tx, 2e-3), (stage.d_tx, 5e-4)):
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -lr * np.sign(grads["w"]), rtol=1e-5)


def test_paste_replaces_exactly_the_fully_known_low_res_pixels():
  rng = np.random.default_rng(0)
  image = jnp.asarray(rng.uniform(size=(2, 16, 16, 3)), jnp.float32)
  mask = jnp.zeros((2, 16, 16, 1)).at[0, 3:9, 5:7].set(1.0).at[1, 0, 15].set(1.0)
  prior = jnp.asarray(rng.uniform(size=(2, 4, 4, 3)), jnp.float32)
  pasted = np.asarray(paste_known_prior(prior, image * (1 - mask), mask))
  hole = np.zeros((2, 4, 4), bool)
  hole[0, 0:3, 1] = True  # rows 3–8 touch low-res rows 0–2; columns 5–6 low-res column 1
  hole[1, 0, 3] = True
  expected = np.where(hole[..., None], prior, image_ops.area_downsample(image, 4))
  np.testing.assert_array_equal(pasted, expected)


def test_generate_gives_g_the_pasted_prior_only_when_asked():
  """`TwoStage.generate` (the one place G's input is formed, in training and sampling)."""
  g = TextureGenerator(base_features=8, num_res_blocks=1)
  image = jnp.asarray(real_crops(2, 32, seed=1))
  mask = jnp.asarray(box_masks(2, 32, seed=1))
  x, prior = image * (1 - mask), jnp.full((2, 8, 8, 3), 0.5)
  params = jax.jit(g.init)(KEY(0), prior, x, mask)["params"]
  apply = jax.jit(lambda p: g.apply({"params": params}, p, x, mask).raw)
  on = TwoStage(None, g, paste_known_prior=True).generate(params, prior, x, mask).raw
  off = TwoStage(None, g, paste_known_prior=False).generate(params, prior, x, mask).raw
  np.testing.assert_allclose(on, apply(paste_known_prior(prior, x, mask)), atol=1e-6)
  np.testing.assert_allclose(off, apply(prior), atol=1e-6)
  assert float(jnp.abs(on - off).max()) > 1e-4


def test_composite_l1_mode_is_the_old_loss():
  config = tiny_config()
  config.texture.l1_mode = "composite"
  stage = TextureStage(config, workdir="")
  image = jnp.asarray(real_crops(2, 16))
  mask = jnp.asarray(box_masks(2, 16))
  raw = jnp.clip(image + 0.1, 0, 1)
  completed = composite(raw, masked({"image": image, "mask": mask}), mask)
  losses = stage.reconstruction_losses(GeneratorOutput(raw, completed), image, mask, None)
  np.testing.assert_allclose(losses["l1"], jnp.mean(jnp.abs(completed - image)), rtol=1e-6)
  config.texture.l1_mode = "raw"
  with pytest.raises(UserError, match="l1_mode"):
    TextureStage(config, workdir="")


def test_training_priors_are_the_truth_without_noise_and_move_with_it(structure_vars):
  """With no latent replaced, f⁻¹(f(truth↓)) is the truth↓ (mid-bin) G trains against; with
  every latent replaced by noise the priors are samples, not the truth."""
  frozen, batch = structure_vars
  config = tiny_config()
  config.texture.max_noise_fraction = 0.0
  stage = TextureStage(config, workdir="")
  s = stage.structure
  truth = image_ops.dequantize(image_ops.area_downsample(batch["image"], s.prior_size),
                               s.n_bits, None) + 0.5
  clean = jax.jit(stage.training_priors)(frozen, batch, KEY(3))
  np.testing.assert_allclose(clean, truth, atol=1e-4)
  config.texture.max_noise_fraction = 1.0
  noisy = jax.jit(TextureStage(config, workdir="").training_priors)(frozen, batch, KEY(3))
  assert noisy.shape == truth.shape and np.isfinite(np.asarray(noisy)).all()
  assert float(jnp.abs(noisy - truth).max()) > 0.05


@pytest.mark.slow
def test_two_stage_complete_keeps_known_pixels_and_returns_its_priors_densities(structure_vars):
  """`TwoStage.sample_completions`, sampling's one jitted call: N completions per input with the known
  pixels exactly the input's, the priors G was given, and their exact log densities."""
  frozen, batch = structure_vars
  config = tiny_config()
  stage = TextureStage(config, workdir="")
  g_params = jax.jit(stage.init)(KEY(1), batch).g_params
  two = stage.two_stage
  x, mask = masked(batch), batch["mask"]
  out, priors, log_prob = jax.jit(two.sample_completions, static_argnames="num")(
      frozen, g_params, x, mask, KEY(4), num=3, temperature=0.8)
  assert out.shape == (4, 3, 32, 32, 3) and priors.shape == (4, 3, 8, 8, 3)
  known = np.broadcast_to(np.asarray(mask)[:, None] < 0.5, out.shape)
  np.testing.assert_array_equal(np.asarray(out)[known],
                                np.broadcast_to(np.asarray(x)[:, None], out.shape)[known])
  assert not np.allclose(out[:, 0], out[:, 1])  # the samples of one input differ
  rep = lambda a: jnp.repeat(a, 3, axis=0)
  expected = two.structure.apply(frozen, priors.reshape(-1, 8, 8, 3), rep(x), rep(mask),
                                 method=two.structure.log_prob)
  np.testing.assert_allclose(log_prob.reshape(-1), expected, rtol=1e-4)
  again = two.texture(g_params, priors.reshape(-1, 8, 8, 3), x, mask).reshape(out.shape)
  np.testing.assert_allclose(again, out, atol=1e-5)  # G's output on exactly those priors
