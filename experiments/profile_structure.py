"""Where stage 1's NLL gradient spends its time: E (the gated-conv encoder) against the flow.

Paper-size `StructurePrior()` (256² images, 64² prior, L=4, K=10), randomly initialised.
Each part is jitted on its own; per part: ms/image, XLA's FLOPs per image and the fraction
of a float32 matmul timed in the same run.

  python experiments/profile_structure.py [--batch 16] [--seconds 4]
"""

import argparse

import benchlib
import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax import image_ops
from flowfill_jax.models.flow import StructurePrior


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--seconds", type=float, default=4.0)
  args = parser.parse_args()
  b = args.batch
  model = StructurePrior()
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.uniform(size=(b, 256, 256, 3)), jnp.float32)
  masks = jnp.zeros((b, 256, 256, 1)).at[:, 64:128, 64:].set(1.0)
  masked = images * (1 - masks)
  variables = jax.jit(model.init)(jax.random.key(0), images, masked, masks)
  params, consts = variables["params"], variables["constants"]
  apply = lambda p, *a, **k: model.apply({"params": p, "constants": consts}, *a, **k)
  conds = jax.jit(lambda p: apply(p, masked, masks, method=model.conditions))(params)
  prior = image_ops.area_downsample(images, model.prior_size) - 0.5

  def encoder_loss(p):  # a scalar of every output E feeds the flow, so its backward is whole
    c = apply(p, masked, masks, method=model.conditions)
    return sum(jnp.mean(level) for level in c.levels) + jnp.mean(c.coarse)

  def flow_nll(flow_params, levels):  # the model's own flow, on given conditions
    _, logdet, logp = apply({**params, "flow": flow_params}, prior, levels,
                            method=lambda m, x, c: m.flow.forward(x, c))
    return -jnp.mean(logdet + logp)

  def nll(p):
    return jnp.mean(apply(p, images, masked, masks, jax.random.key(1)))

  matmul = benchlib.matmul_flops_per_second()
  print(f"device: {benchlib.device_name()}; float32 matmul 2048²: {matmul / 1e9:.0f} GFLOP/s; "
        f"batch {b}")
  rows = []
  for name, fn, fn_args in (
      ("E forward + backward", jax.grad(encoder_loss), (params,)),
      ("flow forward", flow_nll, (params["flow"], conds.levels)),
      ("flow forward + backward", jax.grad(flow_nll, argnums=(0, 1)),
       (params["flow"], conds.levels)),
      ("whole NLL forward + backward", jax.grad(nll), (params,))):
    exe, _, flops = benchlib.compiled(fn, *fn_args)
    seconds = benchlib.time_call(exe, *fn_args, min_seconds=args.seconds)
    rows.append((name, f"{1e3 * seconds / b:.1f}", f"{flops / b / 1e9:.2f}",
                 f"{flops / seconds / matmul:.2f}"))
  benchlib.print_table(["part", "ms/image", "GFLOP/image", "of matmul"], rows)


if __name__ == "__main__":
  main()
