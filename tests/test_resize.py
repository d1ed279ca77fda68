"""Host-side resizing: one choice per job (flowfill_jax/resize.py)."""

import numpy as np

from flowfill_jax import resize


def test_image_same_size_is_untouched_and_floats_keep_their_precision():
  x = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
  assert resize.image(x, (20, 30)) is x
  flat = np.full((37, 41, 3), 0.123456, np.float32)
  out = resize.image(flat, 16)
  assert out.shape == (16, 16, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out, 0.123456, atol=1e-6)  # no 8-bit rounding on the way


def test_image_downsizing_is_antialiased():
  """A 1-pixel checkerboard shrunk 4×: mid-grey everywhere, not an aliased pattern."""
  board = (np.indices((64, 64)).sum(0) % 2).astype(np.float32)
  out = resize.image(np.repeat(board[..., None], 3, -1), 16)
  np.testing.assert_allclose(out, 0.5, atol=0.02)
  out8 = resize.image((np.repeat(board[..., None], 3, -1) * 255).astype(np.uint8), 16)
  assert out8.dtype == np.uint8 and np.abs(out8.astype(int) - 128).max() <= 3


def test_square_crops_the_centre():
  x = np.zeros((40, 60, 3), np.uint8)
  x[:, 10:50] = 200  # the centred 40×40 square
  np.testing.assert_array_equal(resize.square(x, 40), np.full((40, 40, 3), 200, np.uint8))


def test_mask_shrinking_keeps_every_hole_pixel():
  m = np.zeros((64, 64), np.float32)
  m[37, 10] = 1.0  # one hole pixel
  small = resize.mask(m, 16)
  assert small.dtype == bool and small.sum() == 1 and small[37 // 4, 10 // 4]
  odd = resize.mask(m, (13, 11))  # not a divisor: the pixel still makes a hole
  assert odd.any()
  big = resize.mask(small[..., None], 64)
  assert big.shape == (64, 64, 1) and big.sum() == 16  # nearest when enlarging
