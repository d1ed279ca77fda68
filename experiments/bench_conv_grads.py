"""Which of G's and D's convolutions are slow to differentiate on this backend.

The stage-2 training step at the paper size runs ~8× slower than the PyTorch twin on the CPU
(experiments/bench_vs_torch_cpu.txt) while G's forward is level with it. This times, at G's
paper-size shapes (batch 1), the forward, the input gradient and the kernel gradient of each
kind of convolution G and D use (the package's XLA options): a 4×4 stride-2 conv (G's and D's
downsampling; its input gradient is a base-dilated conv), a 3×3 dilation-2 conv (G's residual
blocks; its kernel gradient is a window-dilated one) and a plain 3×3 conv for reference, each
as GFLOP/s of its forward's FLOPs.

  python experiments/bench_conv_grads.py [--batch 1] [--seconds 1]
"""

import argparse

import benchlib
import jax
import jax.numpy as jnp

# (name, input [H, W, Cin], kernel [k, k, Cin, Cout], stride, dilation): G's and D's layers.
CASES = [
    ("G down 4×4/2, 64→256 at 256²", (256, 256, 64), (4, 4, 64, 256), 2, 1),
    ("G down 4×4/2, 128→512 at 128²", (128, 128, 128), (4, 4, 128, 512), 2, 1),
    ("D 4×4/2, 64→128 at 128²", (128, 128, 64), (4, 4, 64, 128), 2, 1),
    ("G res 3×3 dil 2, 256→512 at 64²", (64, 64, 256), (3, 3, 256, 512), 1, 2),
    ("plain 3×3, 256→512 at 64²", (64, 64, 256), (3, 3, 256, 512), 1, 1),
    ("G stem 7×7, 7→128 at 256²", (256, 256, 7), (7, 7, 7, 128), 1, 1),
    ("G to_rgb 7×7, 64→3 at 256²", (256, 256, 64), (7, 7, 64, 3), 1, 1),
    ("D first 4×4/2, 3→64 at 256²", (256, 256, 3), (4, 4, 3, 64), 2, 1),
    ("D logit 4×4, 512→1 at 32²", (32, 32, 512), (4, 4, 512, 1), 1, 1),
]


def conv(x, w, stride, dilation):
  return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME",
                                      rhs_dilation=(dilation, dilation),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--seconds", type=float, default=1.0)
  args = parser.parse_args()
  print(f"device: {benchlib.device_name()}; float32 matmul "
        f"{benchlib.matmul_flops_per_second() / 1e9:.0f} GFLOP/s")
  rows = []
  for name, x_shape, w_shape, stride, dilation in CASES:
    x = jax.random.normal(jax.random.key(0), (args.batch, *x_shape))
    w = jax.random.normal(jax.random.key(1), w_shape) * 0.05
    y = conv(x, w, stride, dilation)
    g = jnp.ones_like(y)
    forward = lambda x, w, s=stride, d=dilation: conv(x, w, s, d)  # noqa: E731
    works = {
        "forward": (forward, (x, w)),
        "input grad": (lambda x, w, g, f=forward: jax.vjp(lambda x: f(x, w), x)[1](g)[0],
                       (x, w, g)),
        "kernel grad": (lambda x, w, g, f=forward: jax.vjp(lambda w: f(x, w), w)[1](g)[0],
                        (x, w, g)),
    }
    flops = 2 * y.size * w_shape[0] * w_shape[1] * w_shape[2]
    cells = [name]
    for fn, fn_args in works.values():
      exe, _, _ = benchlib.compiled(fn, *fn_args)
      secs = benchlib.time_call(exe, *fn_args, min_seconds=args.seconds, min_iters=2)
      cells.append(f"{1e3 * secs:.1f} ms ({flops / secs / 1e9:.0f} GFLOP/s)")
    rows.append(cells)
    print("  ", cells, flush=True)
  benchlib.print_table(["conv", *works], rows)


if __name__ == "__main__":
  main()
