"""Stage-1 speed: the paper-size encoder + flow (L=4, K=10, 64² prior) on whatever JAX sees.

For batch 1 and 16: compile time, NLL train step (forward + backward + Adam)
and sampling (E + flow inverse) images/s, FLOPs per image from XLA's cost
analysis, and the achieved FLOP/s as a fraction of a float32 matmul timed in the
same run. Rows are timed in alternating rounds (best kept, the matmul's too), so
that a drifting load on a shared machine hits every row alike.

  python experiments/bench_flow.py [--batch 1 16] [--image-size 256] [--code before after]

`--code before after` times both in one run: `after` is the package as it is; `before` is the
code before three changes to it: XLA:CPU's Eigen convolutions in every jit (`flowfill_jax.compilation`;
XLA's default on jaxlib 0.10 sends convolutions to YNNPACK), GatedConv's cut of the kernel taps that
only read padding (`layers.live_taps_conv`), and contextual attention's patches as strided slices
(`encoder._patches`; before, `lax.conv_general_dilated_patches`, a grouped convolution). The other
choices make one change (`eigen-only`, `taps-only`, `slices-only`) or the first two (`no-slices`).
(The cond terms of a level's K steps in one conv, timed here before as a fourth change, are now the
model's parameter layout, `FlowLevel.condition_projection`, and cannot be switched off.)
XLA's FLOP count is nearly the same for all: it never counted the taps that read padding.
"""

import argparse
import contextlib
import math
from unittest import mock

import benchlib
import jax
import jax.numpy as jnp
import numpy as np
import optax

from flowfill_jax import compilation
from flowfill_jax.models import encoder, layers
from flowfill_jax.models.flow import StructurePrior

CODE = {  # name: the changes it makes
    "before": set(), "eigen-only": {"eigen"}, "taps-only": {"taps"}, "slices-only": {"slices"},
    "no-slices": {"eigen", "taps"},
    "after": {"eigen", "taps", "slices"}}


def grouped_conv_patches(x, size, stride):
  """Contextual attention's patches as they were computed before `encoder._patches`."""
  return jax.lax.conv_general_dilated_patches(x, (size, size), (stride, stride), "SAME",
                                              dimension_numbers=("NHWC", "OIHW", "NHWC"))


@contextlib.contextmanager
def code_version(name):
  """Trace inside it for the code `name`, one of CODE; yields that code's compiler options."""
  changes = CODE[name]
  with contextlib.ExitStack() as stack:
    if "taps" not in changes:
      stack.enter_context(mock.patch.object(layers, "live_taps_conv",
                                            jax.lax.conv_general_dilated))
    if "slices" not in changes:
      stack.enter_context(mock.patch.object(encoder, "_patches", grouped_conv_patches))
    yield compilation.compiler_options() if "eigen" in changes else None


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
  parser.add_argument("--image-size", type=int, default=256)
  parser.add_argument("--seconds", type=float, default=5.0, help="timing time per row and round")
  parser.add_argument("--rounds", type=int, default=2, help="alternating timing rounds; best kept")
  parser.add_argument("--code", nargs="+", choices=list(CODE), default=["after"])
  args = parser.parse_args()

  model = StructurePrior()
  size = args.image_size
  print(f"device: {benchlib.device_name()}")

  rows = []
  for batch in args.batch:
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.uniform(size=(batch, size, size, 3)), jnp.float32)
    masks = jnp.zeros((batch, size, size, 1)).at[:, size // 4:size // 2, size // 4:].set(1.0)
    masked = images * (1 - masks)
    variables = jax.jit(model.init)(jax.random.key(0), images, masked, masks)
    params, consts = variables["params"], variables["constants"]
    tx = optax.adam(5e-4)
    opt_state = tx.init(params)
    n_params = sum(math.prod(p.shape) for p in jax.tree.leaves(params))

    def train_step(params, opt_state, rng, images, masked, masks):
      loss = lambda p: jnp.mean(model.apply({"params": p, "constants": consts},
                                            images, masked, masks, rng))
      value, grads = jax.value_and_grad(loss)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, value

    def sample(params, rng, masked, masks):
      return model.apply({"params": params, "constants": consts}, rng, masked, masks, 0.8,
                         method=model.sample)

    key = jax.random.key(1)
    work = []  # (name, code, executable, args, compile s, FLOPs)
    for name, fn, fn_args in (("NLL train step", train_step, (params, opt_state, key, images,
                                                              masked, masks)),
                              ("sampling", sample, (params, key, masked, masks))):
      for code in args.code:
        fresh = lambda *a, fn=fn: fn(*a)  # a new function: JAX's trace cache is per function
        with code_version(code) as options:
          exe, compile_s, flops = benchlib.compiled(fresh, *fn_args, compiler_options=options)
        work.append((name, code, exe, fn_args, compile_s, flops))
    # Alternating rounds, best of each: a shared machine's load drifts within a run.
    best = [math.inf] * len(work)
    matmul = 0.0
    for _ in range(args.rounds):
      matmul = max(matmul, benchlib.matmul_flops_per_second())
      for i, (_, _, exe, fn_args, _, _) in enumerate(work):
        best[i] = min(best[i], benchlib.time_call(exe, *fn_args, min_seconds=args.seconds))
    print(f"batch {batch}: float32 matmul 2048² {matmul / 1e9:.0f} GFLOP/s (best of "
          f"{args.rounds} rounds)", flush=True)
    for (name, code, _, _, compile_s, flops), secs in zip(work, best):
      rows.append((name, code, batch, f"{compile_s:.1f}", f"{batch / secs:.2f}",
                   f"{1e3 * secs / batch:.1f}", f"{flops / batch / 1e9:.2f}",
                   f"{flops / secs / 1e9:.0f}", f"{flops / secs / matmul:.2f}"))
  print(f"stage 1: {n_params / 1e6:.2f}M parameters (E + f), prior 64², image {size}²")
  benchlib.print_table(["work", "code", "batch", "compile s", "images/s", "ms/image",
                        "GFLOP/image", "GFLOP/s", "of matmul"], rows)


if __name__ == "__main__":
  main()
