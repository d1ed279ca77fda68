"""Stage-2 losses (paper eq. 8–10): adversarial on D's logits plus ℓ1 reconstruction,
and the VGG perceptual and style losses of ICT's guided upsampler (off by default).

Eq. 8 is the minimax GAN value `E[log(1 - D(I_c))] + E[log D(I_gt)]`. D
maximises it, i.e. minimises the binary cross-entropy of its logits against
real = 1 / fake = 0. For G we use the non-saturating form (Goodfellow et al.,
2014), `-log D(I_c)`, instead of minimising `log(1 - D(I_c))`: same fixed point,
but its gradient does not vanish while D confidently rejects G's early outputs.
`kind="hinge"` swaps in the hinge loss of SN-PatchGAN / BigGAN. All losses take
logits (any shape, e.g. PatchGAN maps) and average over every element.
"""

import jax
import jax.numpy as jnp
import optax

KINDS = ("nonsaturating", "hinge")


def _check(kind: str) -> None:
  if kind not in KINDS:
    raise ValueError(f"GAN loss kind {kind!r} is not one of {KINDS}")


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array,
                       kind: str = "nonsaturating") -> jax.Array:
  """D's loss: `-(eq. 8)`, the sum of its mean losses on real and on fake patches.

  Unweighted: λ1 scales G's objective only (with Adam, a constant factor on
  D's loss would barely change its updates anyway).
  """
  _check(kind)
  if kind == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))
  real = optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits))
  fake = optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits))
  return jnp.mean(real) + jnp.mean(fake)


def generator_adversarial_loss(fake_logits: jax.Array,
                               kind: str = "nonsaturating") -> jax.Array:
  """G's L_adv: `mean(-log sigmoid(D(I_c)))`, or `-mean(D(I_c))` for hinge."""
  _check(kind)
  if kind == "hinge":
    return -jnp.mean(fake_logits)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, jnp.ones_like(fake_logits)))


L1_MODES = ("raw_hole_normalized", "composite")


def l1_loss(completed: jax.Array, target: jax.Array) -> jax.Array:
  """Eq. 9 as written: mean absolute error over all pixels and channels.

  On the composite I_c (`l1_mode="composite"`) known pixels contribute zero, so
  the hole's weight is its area share and G gets no signal outside it.
  """
  return jnp.mean(jnp.abs(completed - target))


def hole_normalized_l1(raw: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """ICT's ℓ1 (`l1_mode="raw_hole_normalized"`): `mean|raw − gt| / mean(M)`.

  ICT (Guided_Upsample/src/models.py): `self.l1_loss(outputs, images) *
  L1_LOSS_WEIGHT / torch.mean(masks)`, `nn.L1Loss()` over every pixel of G's raw
  output, divided by the hole ratio of the whole batch. So the hole weighs about as
  much as if the loss were its own mean, and the known pixels still train G.
  (The floor of 1e-6 only matters for a batch with no hole at all.)
  """
  return jnp.mean(jnp.abs(raw - target)) / jnp.maximum(jnp.mean(mask), 1e-6)


def perceptual_loss(features: dict, target_features: dict) -> jax.Array:
  """ICT's PerceptualLoss: Σ over layers of the mean |φ_l(x) − φ_l(y)| (weights 1)."""
  return sum((jnp.mean(jnp.abs(features[k] - target_features[k])) for k in features),
             jnp.zeros(()))


def gram(f: jax.Array) -> jax.Array:
  """[B, H, W, C] features → [B, C, C] Gram matrices, / (H·W·C) as ICT's compute_gram."""
  b, h, w, c = f.shape
  f = f.reshape(b, h * w, c)
  return jnp.einsum("bnc,bnd->bcd", f, f) / (h * w * c)


def style_loss(features: dict, target_features: dict) -> jax.Array:
  """ICT's StyleLoss: Σ over layers of the mean |gram(φ_l(x)) − gram(φ_l(y))|."""
  return sum((jnp.mean(jnp.abs(gram(features[k]) - gram(target_features[k]))) for k in features),
             jnp.zeros(()))


def generator_objective(fake_logits: jax.Array, losses: dict[str, jax.Array],
                        weights: dict[str, float], kind: str = "nonsaturating"
                        ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """G's objective: `weights["adv"] · L_adv + Σ_k weights[k] · losses[k]` → (total, parts).

  Eq. 10 is `losses = {"l1": …}` with weights adv 0.1, l1 1.0; `parts` holds every
  term unweighted, "adv" included.
  """
  parts = {"adv": generator_adversarial_loss(fake_logits, kind), **losses}
  missing = set(parts) - set(weights)
  if missing:
    raise ValueError(f"no weight for the loss terms {sorted(missing)}")
  return sum((weights[k] * v for k, v in parts.items()), jnp.zeros(())), parts
