"""Timing helpers shared by the benchmark scripts (not imported by the package)."""

import time

import jax
import jax.numpy as jnp

from flowfill_jax import compilation


def compiled(fn, *args, **jit_kwargs):
  """(compiled executable, compile seconds, XLA's FLOP count) of `jit(fn)(*args)`.

  Compiled with the package's XLA options (`flowfill_jax.compilation`) unless
  `compiler_options` is given.
  """
  jit_kwargs.setdefault("compiler_options", compilation.compiler_options())
  start = time.perf_counter()
  exe = jax.jit(fn, **jit_kwargs).lower(*args).compile()
  seconds = time.perf_counter() - start
  cost = exe.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  return exe, seconds, float((cost or {}).get("flops", float("nan")))


def time_call(fn, *args, min_seconds=3.0, min_iters=3, warmup=1):
  """Median-free mean seconds per call of an already compiled `fn` (outputs blocked on)."""
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  iters, start = 0, time.perf_counter()
  while iters < min_iters or time.perf_counter() - start < min_seconds:
    jax.block_until_ready(fn(*args))
    iters += 1
  return (time.perf_counter() - start) / iters


def matmul_flops_per_second(n=2048, dtype=jnp.float32):
  """The machine's float32 matmul rate, measured now on the default device."""
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  exe = jax.jit(lambda a, b: a @ b).lower(a, b).compile()
  return 2 * n ** 3 / time_call(exe, a, b, min_seconds=2.0)


def device_name():
  d = jax.devices()[0]
  return f"{len(jax.devices())}x {d.device_kind} ({d.platform})"


def print_table(headers, rows):
  widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
  line = lambda cells: "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + " |"
  print(line(headers))
  print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
  for r in rows:
    print(line(r))


def peak_memory() -> str:
  """Peak device memory so far, where the backend reports it (GPUs, TPUs; not the CPU)."""
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return f"{peak / 2**30:.2f} GiB" if peak is not None else "not reported by this backend"
