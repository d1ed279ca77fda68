"""Layers shared by the networks of both stages."""

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp


class GatedConv(nn.Module):
  """Gated convolution (Yu et al., DeepFill v2): `act(f) * sigmoid(g)`.

  One convolution emits `2 * features` channels, split into features `f` and
  gates `g`. DeepFill v2's "gated conv of n channels" is `features = n / 2`;
  ICT-style generators use `features = C` directly. `activation=None` leaves the
  features linear (DeepFill's output layers, the second conv of a residual block).
  """

  features: int
  kernel_size: int = 3
  strides: int = 1
  dilation: int = 1
  activation: Callable | None = nn.elu
  transpose: bool = False

  @nn.compact
  def __call__(self, x):
    k = (self.kernel_size, self.kernel_size)
    if self.transpose:
      y = nn.ConvTranspose(2 * self.features, k, strides=(self.strides,) * 2,
                           padding="SAME", name="conv")(x)
    else:
      y = nn.Conv(2 * self.features, k, strides=self.strides,
                  kernel_dilation=self.dilation, padding="SAME", name="conv")(x)
    f, g = jnp.split(y, 2, axis=-1)
    if self.activation is not None:
      f = self.activation(f)
    return f * nn.sigmoid(g)
