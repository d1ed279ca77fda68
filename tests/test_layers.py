"""GatedConv: the sub-pixel transposed path is exactly nn.ConvTranspose(4, stride 2, 'SAME')."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowfill_jax.models.layers import (
    GatedConv,
    SubpixelConvTranspose,
    live_taps_conv,
    subpixel_kernel,
)

KEY = jax.random.key(0)


def _reference_transpose(features):
  return nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME")


def _random_like(variables, seed):
  """Random values (bias included, so a wrong bias placement shows) in `variables`' tree."""
  leaves, treedef = jax.tree.flatten(variables)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(treedef, [jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 4, 4, 8), (3, 1, 2, 2)])
def test_subpixel_matches_conv_transpose(shape):
  x = jax.random.normal(jax.random.key(1), shape)
  ref = _reference_transpose(6)
  variables = _random_like(ref.init(KEY, x), seed=2)
  want = ref.apply(variables, x)
  got = SubpixelConvTranspose(6).apply(variables, x)
  assert got.shape == want.shape == (shape[0], 2 * shape[1], 2 * shape[2], 6)
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_subpixel_gradients_match_conv_transpose():
  x = jax.random.normal(jax.random.key(1), (2, 4, 3, 3))
  ref = _reference_transpose(4)
  variables = _random_like(ref.init(KEY, x), seed=3)
  loss = lambda module: lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)))
  want = jax.grad(loss(ref), argnums=(0, 1))(variables, x)
  got = jax.grad(loss(SubpixelConvTranspose(4)), argnums=(0, 1))(variables, x)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-5), got, want)


def test_subpixel_kernel_mapping_from_jacobian():
  """Read the transposed conv's taps off its Jacobian and check `subpixel_kernel`'s formula:
  output (2m + a, 2n + b) depends on input (m - 1 + a + dy, n - 1 + b + dx) through
  w[2dy + a, 2dx + b], for dy, dx in {0, 1}, and on nothing else."""
  h = w = 3
  x = jnp.zeros((1, h, w, 1))
  ref = _reference_transpose(1)
  kernel = jax.random.normal(jax.random.key(4), (4, 4, 1, 1))
  variables = {"params": {"kernel": kernel, "bias": jnp.zeros((1,))}}
  jac = jax.jacobian(lambda x: ref.apply(variables, x))(x)[0, :, :, 0, 0, :, :, 0]  # [2h, 2w, h, w]
  sub = subpixel_kernel(kernel).reshape(2, 2, 2, 2)  # [dy, dx, a, b]
  expected = np.zeros((2 * h, 2 * w, h, w), np.float32)
  for m in range(h):
    for n in range(w):
      for a in (0, 1):
        for b in (0, 1):
          for dy in (0, 1):
            for dx in (0, 1):
              i, j = m - 1 + a + dy, n - 1 + b + dx
              if 0 <= i < h and 0 <= j < w:
                expected[2 * m + a, 2 * n + b, i, j] = sub[dy, dx, a, b]
                assert sub[dy, dx, a, b] == kernel[2 * dy + a, 2 * dx + b, 0, 0]
  np.testing.assert_allclose(jac, expected, atol=1e-6)


def test_subpixel_has_conv_transpose_parameters_and_init():
  x = jnp.ones((1, 4, 4, 5))
  want = _reference_transpose(6).init(KEY, x)
  got = SubpixelConvTranspose(6).init(KEY, x)
  assert jax.tree.map(jnp.shape, got) == {"params": {"kernel": (4, 4, 5, 6), "bias": (6,)}}
  jax.tree.map(np.testing.assert_array_equal, got, want)


def test_gated_transpose_matches_gated_conv_transpose():
  x = jax.random.normal(jax.random.key(5), (2, 6, 5, 4))
  layer = GatedConv(3, 4, strides=2, transpose=True, activation=nn.relu, name="up")
  variables = layer.init(KEY, x)
  assert jax.tree.map(jnp.shape, variables) == {
      "params": {"conv": {"kernel": (4, 4, 4, 6), "bias": (6,)}}}
  variables = _random_like(variables, seed=6)
  y = _reference_transpose(6).apply({"params": variables["params"]["conv"]}, x)
  f, g = jnp.split(y, 2, axis=-1)
  got = layer.apply(variables, x)
  assert got.shape == (2, 12, 10, 3)
  np.testing.assert_allclose(got, nn.relu(f) * nn.sigmoid(g), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3), dict(kernel_size=4, strides=1),
                                    dict(kernel_size=4, dilation=2), dict(kernel_size=2)])
def test_other_transposed_configurations_raise(kwargs):
  layer = GatedConv(4, transpose=True, **{"strides": 2, **kwargs})
  with pytest.raises(ValueError, match=r"transpose=True\) supports only kernel_size=4"):
    layer.init(KEY, jnp.ones((1, 4, 4, 2)))


@pytest.mark.parametrize("kwargs, out_hw", [
    (dict(kernel_size=3), (8, 6)),
    (dict(kernel_size=4, strides=2, activation=nn.relu), (4, 3)),
    (dict(kernel_size=3, dilation=2, activation=None), (8, 6)),
    (dict(kernel_size=7, activation=nn.relu), (8, 6)),
])
def test_gated_conv_unchanged(kwargs, out_hw):
  """The non-transposed path: one nn.Conv 'SAME' to 2·features, act(f) · sigmoid(g)."""
  x = jax.random.normal(jax.random.key(7), (2, 8, 6, 3))
  layer = GatedConv(5, **kwargs)
  variables = _random_like(layer.init(KEY, x), seed=8)
  k = kwargs["kernel_size"]
  assert jax.tree.map(jnp.shape, variables) == {
      "params": {"conv": {"kernel": (k, k, 3, 10), "bias": (10,)}}}
  conv = nn.Conv(10, (k, k), strides=kwargs.get("strides", 1),
                 kernel_dilation=kwargs.get("dilation", 1), padding="SAME")
  f, g = jnp.split(conv.apply({"params": variables["params"]["conv"]}, x), 2, axis=-1)
  act = kwargs.get("activation", nn.elu)
  want = (f if act is None else act(f)) * nn.sigmoid(g)
  got = layer.apply(variables, x)
  assert got.shape == (2, *out_hw, 5)
  np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kernel, dilation", [(3, (6, 6)), (3, (16, 16)), (5, (2, 3)), (3, (1, 1))])
def test_live_taps_conv_cuts_dead_taps_and_equals_the_full_conv(kernel, dilation):
  """Taps that only read 'SAME' padding are cut from the kernel: same values and gradients."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 8, 6, 4)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 4, 6)) / 6, jnp.float32)
  dims = ("NHWC", "HWIO", "NHWC")

  def loss(conv, x, w):
    y = conv(x, w, (1, 1), "SAME", rhs_dilation=dilation, dimension_numbers=dims)
    return jnp.sum(jnp.sin(y)), y

  full = jax.value_and_grad(functools.partial(loss, jax.lax.conv_general_dilated),
                            (0, 1), has_aux=True)
  live = jax.value_and_grad(functools.partial(loss, live_taps_conv), (0, 1), has_aux=True)
  for a, b in zip(jax.tree.leaves(live(x, w)), jax.tree.leaves(full(x, w))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

  # XLA's cost analysis counts only in-bounds taps either way; the kernel convolved shows the cut.
  jaxpr = jax.make_jaxpr(lambda x, w: loss(live_taps_conv, x, w)[1])(x, w)
  (conv,) = [e for e in jaxpr.eqns if e.primitive.name == "conv_general_dilated"]
  live_shape = tuple(min(kernel // 2, (size - 1) // d) * 2 + 1 for size, d in zip((8, 6), dilation))
  assert conv.invars[1].aval.shape == (*live_shape, 4, 6)
