"""Stage-2 losses (paper eq. 8–10): adversarial on D's logits plus ℓ1 reconstruction.

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


def l1_loss(completed: jax.Array, target: jax.Array) -> jax.Array:
  """Eq. 9: mean absolute error over all pixels and channels.

  The paper applies it to the composite I_c, so known pixels contribute zero and
  only the hole is trained; pass G's raw output to supervise it everywhere.
  """
  return jnp.mean(jnp.abs(completed - target))


def generator_objective(fake_logits: jax.Array, completed: jax.Array, target: jax.Array, *,
                        adv_weight: float = 0.1, l1_weight: float = 1.0,
                        kind: str = "nonsaturating") -> tuple[jax.Array, dict[str, jax.Array]]:
  """Eq. 10 for G: `adv_weight * L_adv + l1_weight * L1` → (total, {"adv", "l1"})."""
  adv = generator_adversarial_loss(fake_logits, kind)
  l1 = l1_loss(completed, target)
  return adv_weight * adv + l1_weight * l1, {"adv": adv, "l1": l1}
