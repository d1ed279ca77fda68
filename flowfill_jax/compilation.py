"""`jit`: jax.jit with the XLA options this package's convolution networks run fastest with.

jaxlib 0.10's XLA:CPU hands convolutions to YNNPACK, which runs these models' convolutions
slower than XLA's Eigen kernels: the paper-size stage-1 NLL step 204 → 184 ms/image and its
batch-16 sampling 73 → 52 ms/image on a 2-core EPYC, G level (experiments/notes_speed.md). So
every jit of the package keeps YNNPACK for dots only. The option is a field of XLA's
DebugOptions, which other backends ignore; setting `xla_cpu_experimental_ynn_fusion_type`
yourself in XLA_FLAGS turns this off (your setting wins).
"""

import importlib.metadata
import os
from collections.abc import Callable

import jax

_YNN_FUSION_TYPE = "xla_cpu_experimental_ynn_fusion_type"
EIGEN_CONVOLUTIONS = {_YNN_FUSION_TYPE: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


# The first jaxlib seen to know the option (an option XLA does not know fails every compile).
_FIRST_JAXLIB = (0, 10, 2)


def _version(text: str) -> tuple[int, ...]:
  return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def compiler_options() -> dict[str, str] | None:
  """The options `jit` compiles with: None where the user chose, on an older jaxlib, or off
  the CPU (the option is XLA:CPU's alone)."""
  if _YNN_FUSION_TYPE in os.environ.get("XLA_FLAGS", "") or jax.default_backend() != "cpu":
    return None
  try:
    if _version(importlib.metadata.version("jaxlib")) < _FIRST_JAXLIB:
      return None
  except importlib.metadata.PackageNotFoundError:  # a jaxlib built in place: leave XLA be
    return None
  return dict(EIGEN_CONVOLUTIONS)


def jit(fun: Callable, /, **kwargs) -> jax.stages.Wrapped:
  """`jax.jit(fun, **kwargs)`, compiled with `compiler_options()`."""
  return jax.jit(fun, compiler_options=compiler_options(), **kwargs)
