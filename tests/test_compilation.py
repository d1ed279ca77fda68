"""compilation.jit: the package's XLA options compile on this jaxlib and change no result."""

import importlib.metadata

import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax import compilation


def _gated_conv(x, w):
  y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", rhs_dilation=(2, 2),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  features, gate = jnp.split(y, 2, axis=-1)
  return jax.nn.elu(features) * jax.nn.sigmoid(gate)


def test_options_apply_on_this_jaxlib_and_the_user_flag_wins(monkeypatch):
  jaxlib = tuple(int(p) for p in importlib.metadata.version("jaxlib").split(".")[:3])
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=false")
  assert (compilation.compiler_options() is not None) == (jaxlib >= (0, 10, 2))
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=individual_dot")
  assert compilation.compiler_options() is None


def test_jit_matches_jax_jit_on_a_conv_and_its_gradient(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 12, 12, 5)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 5, 8)) / 6, jnp.float32)
  value_and_grad = jax.value_and_grad(lambda x, w: jnp.sum(_gated_conv(x, w) ** 2), (0, 1))
  ours = compilation.jit(value_and_grad)(x, w)
  reference = jax.jit(value_and_grad)(x, w)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
