"""Optimisers: Adam with the paper's step-halving learning rate."""

import ml_collections
import optax


def halving_schedule(base_lr: float, total_steps: int,
                     fractions: tuple[float, ...] = (0.5, 0.75, 0.9, 0.95)) -> optax.Schedule:
  """`base_lr`, halved at each fraction of `total_steps` (paper §4.1: 50/75/90/95%)."""
  boundaries = {}
  for f in fractions:
    step = int(round(f * total_steps))
    boundaries[step] = boundaries.get(step, 1.0) * 0.5
  return optax.piecewise_constant_schedule(base_lr, boundaries)


def adam(train_config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation,
                                                            optax.Schedule]:
  """Adam(b1, b2) on the stage's schedule, with optional global-norm clipping."""
  if train_config.get("lr_halvings"):
    schedule = halving_schedule(train_config.lr, train_config.steps,
                                tuple(train_config.lr_halvings))
  else:
    schedule = optax.constant_schedule(train_config.lr)
  parts = []
  if train_config.get("grad_clip"):
    parts.append(optax.clip_by_global_norm(train_config.grad_clip))
  parts.append(optax.adam(schedule, b1=train_config.b1, b2=train_config.b2))
  return optax.chain(*parts), schedule
