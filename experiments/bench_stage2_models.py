"""Stage-2 sizes and speed: the paper-size G and D at 256², on whatever JAX sees.

Prints parameter counts, forward FLOPs per image two ways — XLA's cost analysis
(2 per multiply-add, counting only kernel taps that land on real input: no
'SAME' padding border, no zeros inserted by a transposed conv) and every conv's
dense multiply-adds ×2 with the padding border included (the convention of
SPEC.md's ~196 GFLOP) — and the jitted forward time after compile, with the
FLOP/s as a fraction of a float32 matmul timed in the same run. The machine may
be shared: the load average is printed with the results.

  python experiments/bench_stage2_models.py [--batch 1] [--image-size 256] [--layers]
"""

import argparse
import functools
import math
import os

import benchlib
import flax.linen as nn
import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

from flowfill_jax.models.discriminator import PatchDiscriminator
from flowfill_jax.models.generator import TextureGenerator
from flowfill_jax.models.layers import GatedConv


def dense_conv_flops(fn, *args) -> float:
  """2 × multiply-adds of every convolution in `fn`'s jaxpr, padding border included.

  A transposed conv counts its real work, not the zeros it inserts.
  """

  def walk(jaxpr):
    total = 0.0
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == "conv_general_dilated":
        lhs, rhs = (v.aval.shape for v in eqn.invars)
        out = eqn.outvars[0].aval.shape
        dn = eqn.params["dimension_numbers"]
        kernel_taps = math.prod(rhs[d] for d in dn.rhs_spec[2:])
        cin_per_group = rhs[dn.rhs_spec[1]]
        cout = out[dn.out_spec[1]]
        positions = out[dn.out_spec[0]] * math.prod(out[d] for d in dn.out_spec[2:])
        # An lhs-dilated (transposed) conv touches a real input pixel with 1/prod(dilation)
        # of its kernel taps at each output position.
        taps = kernel_taps / math.prod(eqn.params["lhs_dilation"])
        total += 2.0 * positions * taps * cin_per_group * cout
      for sub in jex.core.jaxprs_in_params(eqn.params):
        total += walk(sub)
    return total

  return walk(jax.make_jaxpr(fn)(*args).jaxpr)


def layer_rows(key, seconds):
  """G's two costly layer kinds at 256², and a stride-1 conv doing up_1's useful work.

  XLA:CPU runs a transposed conv as a dense conv over the zero-dilated input; the
  last row is the sub-pixel form (a 2×2 conv to 4× the channels, then
  depth-to-space) that does the same multiply-adds without the zeros.
  """
  x = jnp.ones((1, 64, 64, 256))
  rows = []
  for name, layer in (
      ("res conv: gated 3×3 dil 2, 256→256", GatedConv(256, 3, dilation=2, activation=nn.relu)),
      ("up_1: gated 4×4/2 transposed, 256→128", GatedConv(128, 4, strides=2, transpose=True,
                                                         activation=nn.relu)),
      ("up_1's work as a 2×2 conv 256→4·256", nn.Conv(4 * 256, (2, 2), padding="SAME"))):
    variables = jax.jit(layer.init)(key, x)
    exe, _, flops = benchlib.compiled(layer.apply, variables, x)
    secs = benchlib.time_call(exe, variables, x, min_seconds=seconds)
    rows.append((name, f"{flops / 1e9:.2f}", f"{1e3 * secs:.0f}", f"{flops / secs / 1e9:.0f}"))
  return rows


def n_params(variables) -> int:
  return sum(math.prod(p.shape) for p in jax.tree.leaves(variables["params"]))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--image-size", type=int, default=256)
  parser.add_argument("--prior-size", type=int, default=64)
  parser.add_argument("--seconds", type=float, default=10.0, help="timing time per row")
  parser.add_argument("--layers", action="store_true", help="also time G's costly layers")
  args = parser.parse_args()

  matmul = benchlib.matmul_flops_per_second()
  print(f"device: {benchlib.device_name()}; float32 matmul 2048²: {matmul / 1e9:.0f} GFLOP/s; "
        f"load average {os.getloadavg()[0]:.1f}")
  b, s = args.batch, args.image_size
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.uniform(size=(b, s, s, 3)), jnp.float32)
  masks = jnp.zeros((b, s, s, 1)).at[:, s // 4:s // 2, s // 4:].set(1.0)
  priors = jnp.asarray(rng.uniform(size=(b, args.prior_size, args.prior_size, 3)), jnp.float32)
  masked = images * (1 - masks)
  key = jax.random.key(0, impl="rbg")

  g, d = TextureGenerator(), PatchDiscriminator()
  g_vars = jax.jit(g.init)(key, priors, masked, masks)
  d_vars = jax.jit(functools.partial(d.init, update_stats=False))(key, images)
  g_fwd = lambda v, p, m, k: g.apply(v, p, m, k).completed
  d_fwd = functools.partial(d.apply, update_stats=False)

  rows = []
  for name, model_vars, fn, inputs in (("G forward", g_vars, g_fwd, (priors, masked, masks)),
                                       ("D forward", d_vars, d_fwd, (images,))):
    exe, compile_s, xla_flops = benchlib.compiled(fn, model_vars, *inputs)
    dense = dense_conv_flops(fn, model_vars, *inputs)
    secs = benchlib.time_call(exe, model_vars, *inputs, min_seconds=args.seconds)
    rows.append((name, f"{n_params(model_vars) / 1e6:.3f}M", b, f"{compile_s:.1f}",
                 f"{xla_flops / b / 1e9:.1f}", f"{dense / b / 1e9:.1f}",
                 f"{1e3 * secs / b:.0f}", f"{xla_flops / secs / 1e9:.0f}",
                 f"{xla_flops / secs / matmul:.2f}"))
  print(f"stage 2 at {s}², prior {args.prior_size}²")
  benchlib.print_table(["model", "params", "batch", "compile s", "XLA GFLOP/img",
                        "dense GFLOP/img", "ms/img", "XLA GFLOP/s", "of matmul"], rows)
  if args.layers:
    benchlib.print_table(["layer at 64² input, batch 1", "XLA GFLOP", "ms", "GFLOP/s"],
                         layer_rows(key, args.seconds / 2))


if __name__ == "__main__":
  main()
