"""Stage-1 speed: the paper-size encoder + flow (L=4, K=10, 64² prior) on whatever JAX sees.

For batch 1 and 16: compile time, NLL train step (forward + backward + Adam)
and sampling (E + flow inverse) images/s, FLOPs per image from XLA's cost
analysis, and the achieved FLOP/s as a fraction of a float32 matmul timed in the
same run.

  python experiments/bench_flow.py [--batch 1 16] [--image-size 256] [--convs xla eigen]

`--convs` compiles each row per XLA:CPU conv backend in the same run: `xla` is XLA's default
(jaxlib 0.10 sends convs to YNNPACK), `eigen` keeps YNNPACK for dots only (notes_speed.md).
"""

import argparse
import math

import benchlib
import jax
import jax.numpy as jnp
import numpy as np
import optax

from flowfill_jax.models.flow import StructurePrior

CONV_OPTIONS = {"xla": None, "eigen": {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
  parser.add_argument("--image-size", type=int, default=256)
  parser.add_argument("--seconds", type=float, default=5.0, help="timing time per row")
  parser.add_argument("--convs", nargs="+", choices=sorted(CONV_OPTIONS), default=["xla"])
  args = parser.parse_args()

  model = StructurePrior()
  size = args.image_size
  matmul = benchlib.matmul_flops_per_second()
  print(f"device: {benchlib.device_name()}; float32 matmul 2048²: {matmul / 1e9:.0f} GFLOP/s")

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
    train_args = (params, opt_state, key, images, masked, masks)
    for convs in args.convs:  # both rows compiled with that conv backend's options
      for name, fn, fn_args in (("NLL train step", train_step, train_args),
                                ("sampling", sample, (params, key, masked, masks))):
        exe, compile_s, flops = benchlib.compiled(fn, *fn_args,
                                                  compiler_options=CONV_OPTIONS[convs])
        secs = benchlib.time_call(exe, *fn_args, min_seconds=args.seconds)
        rows.append((name, convs, batch, f"{compile_s:.1f}", f"{batch / secs:.2f}",
                     f"{1e3 * secs / batch:.1f}", f"{flops / batch / 1e9:.2f}",
                     f"{flops / secs / 1e9:.0f}", f"{flops / secs / matmul:.2f}"))
  print(f"stage 1: {n_params / 1e6:.2f}M parameters (E + f), prior 64², image {size}²")
  benchlib.print_table(["work", "convs", "batch", "compile s", "images/s", "ms/image",
                        "GFLOP/image", "GFLOP/s", "of matmul"], rows)


if __name__ == "__main__":
  main()
