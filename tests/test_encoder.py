"""The condition encoder's contextual attention: its patch extraction and paste-back."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowfill_jax.models import encoder


@pytest.mark.parametrize("shape,size,stride", [
    ((2, 16, 16, 5), 4, 2),   # reconstruction patches (2·rate, stride rate)
    ((2, 8, 8, 7), 3, 1),     # matching patches
    ((1, 9, 7, 3), 4, 2),     # odd sizes: uneven 'SAME' padding
    ((1, 9, 7, 3), 3, 2),
])
def test_patches_and_their_paste_back_equal_lax_conv_general_dilated_patches(shape, size, stride):
  x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)

  def reference(t):
    return jax.lax.conv_general_dilated_patches(t, (size, size), (stride, stride), "SAME",
                                                dimension_numbers=("NHWC", "OIHW", "NHWC"))

  want, fold_want = jax.vjp(reference, x)
  got, fold_got = jax.vjp(lambda t: encoder._patches(t, size, stride), x)
  np.testing.assert_array_equal(got, want)
  patches = jnp.asarray(np.random.default_rng(1).normal(size=want.shape), jnp.float32)
  np.testing.assert_allclose(fold_got(patches)[0], fold_want(patches)[0], rtol=1e-6, atol=1e-6)
