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


def _version(text: str) -> tuple[int, ...]:
  return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def compiler_options() -> dict[str, str] | None:
  """The options `jit` compiles with: None where the user chose, or the jaxlib predates YNN convs."""
  if _YNN_FUSION_TYPE in os.environ.get("XLA_FLAGS", ""):
    return None
  if _version(importlib.metadata.version("jaxlib")) < (0, 10):
    return None
  return dict(EIGEN_CONVOLUTIONS)


def jit(fun: Callable, /, **kwargs) -> jax.stages.Wrapped:
  """`jax.jit(fun, **kwargs)`, compiled with `compiler_options()`."""
  return jax.jit(fun, compiler_options=compiler_options(), **kwargs)
