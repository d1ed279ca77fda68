"""Stage 2 training: the guided texture GAN on priors from the frozen flow (paper §3.3).

Training priors come from the ground truth: z = f(I_gt↓; E(I_m↓)), a random
fraction of z's (standardised) dimensions is replaced by fresh noise, and
I_s = f⁻¹(z'; E(I_m↓)) — so G learns from priors that look like stage 1's
samples but stay close to the truth. G sees them through `TwoStage.generate`,
as at sampling (known low-res pixels pasted when `model.texture.paste_known_prior`).

Loss: 0.1·L_adv + 1.0·L1 (eq. 8–10), set up as ICT's guided upsampler, whose
settings these are: ℓ1 on G's raw output normalised by the hole ratio
(`texture.l1_mode`), D at 0.1× G's learning rate (`texture.d_lr_ratio`), and
optionally ICT's VGG perceptual and style losses (`texture.perceptual_weight`,
`texture.style_weight`; their weights are loaded with stage 1's into `frozen`).
D judges the composite I_c (paper eq. 8); ICT's judges G's raw output.
"""

from typing import Any, cast

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import NamedSharding

from flowfill_jax import factory, gan_losses, image_ops, optim, visualize
from flowfill_jax.errors import UserError
from flowfill_jax.models import vgg
from flowfill_jax.models.flow import flatten_latents, unflatten_latents, usable_priors
from flowfill_jax.models.generator import GeneratorOutput
from flowfill_jax.structure_stage import masked


class TextureState(flax.struct.PyTreeNode):
  step: jax.Array
  g_params: Any  # flax variable dicts (dict or FrozenDict)
  d_params: Any
  d_stats: Any  # spectral-norm power-iteration vectors
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState


_VGG_LOSSES = {"perceptual": (gan_losses.perceptual_loss, vgg.PERCEPTUAL_LAYERS),
               "style": (gan_losses.style_loss, vgg.STYLE_LAYERS)}


def _with_lr(train_config, lr: float) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(train_config.to_dict())
  c.lr = lr
  return c


class TextureStage:
  """The pieces the generic loop in `train.py` needs for stage 2.

  `frozen` (what `train_step`, `eval_step` and `sample_rows` take) is stage 1's
  variables, plus under "vgg" the VGG16 weights when a perceptual or style loss is on.
  """

  name = "texture"
  loss_name = "l1"

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.config = config
    sc = self.stage_config = config.texture
    if sc.l1_mode not in gan_losses.L1_MODES:
      raise UserError(f"texture.l1_mode must be one of {gan_losses.L1_MODES}, got {sc.l1_mode!r}")
    self.two_stage = factory.two_stage(config)
    self.structure = self.two_stage.structure
    self.generator = self.two_stage.generator
    self.discriminator = factory.discriminator(config)
    self.g_tx, self.schedule = optim.adam(sc)
    self.d_tx, self.d_schedule = optim.adam(_with_lr(sc, sc.lr * sc.d_lr_ratio))
    # G's loss terms and weights; the VGG terms only when weighted (they cost a VGG pass).
    self.weights = {"adv": sc.adv_weight, "l1": sc.l1_weight}
    layers = ()
    if sc.perceptual_weight:
      self.weights["perceptual"] = sc.perceptual_weight
      layers += vgg.PERCEPTUAL_LAYERS
    if sc.style_weight:
      self.weights["style"] = sc.style_weight
      layers += vgg.STYLE_LAYERS
    self.vgg = vgg.VGG16Features(tuple(dict.fromkeys(layers))) if layers else None
    self.workdir = workdir

  def frozen_variables(self, sharding: NamedSharding | None) -> dict:
    variables = factory.load_structure_variables(self.config, self.workdir, sharding)
    if self.vgg is not None:
      params = vgg.load_params(self.vgg.layers)
      variables["vgg"] = params if sharding is None else jax.device_put(params, sharding)
    return variables

  def _split_frozen(self, frozen):
    """→ (stage 1's variables, VGG params or None). A `frozen` without "vgg" (stage 1's
    variables alone) gets the weights loaded here, as constants of the jitted step."""
    structure_vars = {k: v for k, v in frozen.items() if k != "vgg"}
    vgg_params = frozen.get("vgg")
    if self.vgg is not None and vgg_params is None:
      vgg_params = vgg.load_params(self.vgg.layers)
    return structure_vars, vgg_params

  def init(self, key: jax.Array, batch: dict) -> TextureState:
    k_g, k_d = jax.random.split(key)
    p = self.structure.prior_size
    prior = jnp.zeros(batch["image"].shape[:1] + (p, p, 3), jnp.float32)
    g_params = self.generator.init(k_g, prior, masked(batch), batch["mask"])["params"]
    d_vars = self.discriminator.init(k_d, batch["image"], batch["mask"], update_stats=False)
    return TextureState(step=jnp.zeros((), jnp.int32), g_params=g_params,
                        d_params=d_vars["params"], d_stats=d_vars["batch_stats"],
                        g_opt_state=self.g_tx.init(g_params),
                        d_opt_state=self.d_tx.init(d_vars["params"]))

  def training_priors(self, structure_vars: dict, batch: dict, key: jax.Array) -> jax.Array:
    """I_s from the ground truth's latents with a random fraction replaced by noise."""
    s = self.structure
    k_frac, k_where, k_noise = jax.random.split(key, 3)
    truth = image_ops.dequantize(image_ops.area_downsample(batch["image"], s.prior_size),
                                 s.n_bits, None)
    cond = s.apply(structure_vars, masked(batch), batch["mask"], method=s.conditions)
    eps, _, _ = cast(tuple, s.apply(structure_vars, truth, masked(batch), batch["mask"],
                                    standardized=True, cond=cond, method=s.encode))
    flat = flatten_latents(eps)
    fraction = jax.random.uniform(k_frac, (flat.shape[0], 1)) * self.stage_config.max_noise_fraction
    noise = self.stage_config.prior_noise_temperature * jax.random.normal(k_noise, flat.shape)
    flat = jnp.where(jax.random.uniform(k_where, flat.shape) < fraction, noise, flat)
    x, _, _ = cast(tuple, s.apply(structure_vars, unflatten_latents(flat, s.prior_size, s.levels),
                                  masked(batch), batch["mask"], standardized=True,
                                  cond=cond, method=s.decode))
    # A noised latent far in the tail can overflow f⁻¹ in float32; such an example keeps its
    # un-noised truth.
    usable = usable_priors(x + 0.5)[:, None, None, None]
    return jax.lax.stop_gradient(image_ops.postprocess(jnp.where(usable, x, truth)))

  def _d_logits(self, params, stats, image, mask, update) -> tuple[jax.Array, Any]:
    """→ (D's logits, {"batch_stats": …} updated when `update`)."""
    variables = {"params": params, "batch_stats": stats}
    if update:
      return cast(tuple, self.discriminator.apply(variables, image, mask, update_stats=True,
                                                  mutable=["batch_stats"]))
    logits = self.discriminator.apply(variables, image, mask, update_stats=False)
    return cast(jax.Array, logits), {"batch_stats": stats}

  def reconstruction_losses(self, out: GeneratorOutput, image: jax.Array, mask: jax.Array,
                            vgg_params: Any) -> dict:
    """G's non-adversarial terms on its output `out` (a `GeneratorOutput`), unweighted.

    As ICT computes them: ℓ1 (`l1_mode`), perceptual on the raw output against
    the ground truth, style on `raw·M` against `gt·M` (the hole only).
    """
    if self.stage_config.l1_mode == "composite":
      losses = {"l1": gan_losses.l1_loss(out.completed, image)}
    else:
      losses = {"l1": gan_losses.hole_normalized_l1(out.raw, image, mask)}
    if self.vgg is None:
      return losses
    pairs = []  # (term, G's side, ground truth's side), one VGG pass for all
    if "perceptual" in self.weights:
      pairs.append(("perceptual", out.raw, image))
    if "style" in self.weights:
      pairs.append(("style", out.raw * mask, image * mask))
    inputs = jnp.concatenate([x for _, a, b in pairs for x in (a, b)])
    features = {k: jnp.split(f, 2 * len(pairs))
                for k, f in cast(dict, self.vgg.apply({"params": vgg_params}, inputs)).items()}
    for i, (name, _, _) in enumerate(pairs):
      fn, layers = _VGG_LOSSES[name]
      losses[name] = fn({k: features[k][2 * i] for k in layers},
                        {k: features[k][2 * i + 1] for k in layers})
    return losses

  def train_step(self, state: TextureState, batch: dict, key: jax.Array,
                 frozen: dict) -> tuple[TextureState, dict]:
    kind = self.stage_config.gan_loss
    structure_vars, vgg_params = self._split_frozen(frozen)
    rng = jax.random.fold_in(key, state.step)
    priors = self.training_priors(structure_vars, batch, rng)
    image, mask = batch["image"], batch["mask"]
    out, g_vjp = jax.vjp(lambda p: self.two_stage.generate(p, priors, masked(batch), mask),
                         state.g_params)
    completed = out.completed

    def d_loss_fn(d_params):
      real, stats = self._d_logits(d_params, state.d_stats, image, mask, True)
      fake, _ = self._d_logits(d_params, stats["batch_stats"],
                               jax.lax.stop_gradient(completed), mask, False)
      return gan_losses.discriminator_loss(real, fake, kind), stats["batch_stats"]

    (d_loss, d_stats), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
    d_updates, d_opt_state = self.d_tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    def g_loss_fn(out):
      fake, _ = self._d_logits(d_params, d_stats, out.completed, mask, False)
      losses = self.reconstruction_losses(out, image, mask, vgg_params)
      return gan_losses.generator_objective(fake, losses, self.weights, kind)

    (g_loss, parts), g_out_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(out)
    (g_grads,) = g_vjp(g_out_grad)
    g_updates, g_opt_state = self.g_tx.update(g_grads, state.g_opt_state, state.g_params)
    new_state = state.replace(step=state.step + 1,
                              g_params=optax.apply_updates(state.g_params, g_updates),
                              d_params=d_params, d_stats=d_stats, g_opt_state=g_opt_state,
                              d_opt_state=d_opt_state)
    parts["g_adv"] = parts.pop("adv")
    return new_state, {**parts, "g_loss": g_loss, "d_loss": d_loss,
                       "lr": self.schedule(state.step), "d_lr": self.d_schedule(state.step)}

  def eval_step(self, state: TextureState, batch: dict, key: jax.Array, frozen: dict) -> dict:
    """Per-example ℓ1 of the two-stage completion from a sampled prior (test-time path)."""
    structure_vars, _ = self._split_frozen(frozen)
    out, _, _ = self.two_stage.sample_completions(structure_vars, state.g_params, masked(batch),
                                     batch["mask"], key, num=1,
                                     temperature=self.config.sample.temperature)
    return {"l1": jnp.mean(jnp.abs(out[:, 0] - batch["image"]), axis=(1, 2, 3))}

  def sample_rows(self, state: TextureState, batch: dict, key: jax.Array,
                  frozen: dict) -> list:
    """Columns: masked input, completions at τ (one column per sample), ground truth."""
    structure_vars, _ = self._split_frozen(frozen)
    n = self.stage_config.num_samples
    out, _, _ = self.two_stage.sample_completions(structure_vars, state.g_params, masked(batch),
                                     batch["mask"], key, num=n,
                                     temperature=self.config.sample.temperature)
    shown = visualize.grey_holes(masked(batch), batch["mask"])
    return [shown, *[out[:, i] for i in range(n)], batch["image"]]
