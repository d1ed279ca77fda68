"""Classical inpainting baselines: exact known pixels, sane fills, names, OpenCV optional."""

import importlib.util
import sys

import numpy as np
import pytest
from conftest import box_masks, real_crops

from flowfill_jax import baselines

HAVE_CV2 = importlib.util.find_spec("cv2") is not None
METHODS = ["biharmonic", pytest.param("telea", marks=pytest.mark.skipif(
    not HAVE_CV2, reason="opencv-python-headless not installed"))]


@pytest.mark.parametrize("name", METHODS)
def test_known_pixels_exact_and_holes_filled_in_range(name):
  images = real_crops(3, 32, seed=1)
  images[0, :4] = 1.0  # saturated pixels next to the hole must not push the fill out of [0, 1]
  masks = box_masks(3, 32, seed=2)
  masks[1, :, :2] = 1.0  # a hole touching the border
  out = baselines.inpaint(name, images, masks)
  assert out.shape == images.shape and out.dtype == np.float32
  known = np.broadcast_to(masks < 0.5, images.shape)
  np.testing.assert_array_equal(out[known], images[known])  # bit for bit
  hole = ~known
  assert np.all(np.isfinite(out[hole])) and out[hole].min() >= 0 and out[hole].max() <= 1
  assert np.abs(out[hole] - 0.0).max() > 0.05  # filled with something, not left black
  noisy = np.where(masks > 0.5, np.random.default_rng(3).random(images.shape), images)
  np.testing.assert_array_equal(baselines.inpaint(name, noisy, masks), out)  # truth never read


def test_biharmonic_recovers_a_smooth_gradient():
  """A quadratic image solves the biharmonic equation, so the hole comes back to float
  rounding (6e-8 measured); Telea misses it by 0.11, a mean-colour fill by 0.18."""
  y, x = np.mgrid[0:48, 0:48] / 47.0
  image = np.stack([0.2 + 0.6 * x, 0.1 + 0.5 * y + 0.3 * x * y, 0.9 - 0.4 * (x - 0.5) ** 2],
                   axis=-1).astype(np.float32)[None]
  mask = np.zeros((1, 48, 48, 1), np.float32)
  mask[0, 14:34, 10:30] = 1.0
  out = baselines.inpaint("biharmonic", image, mask)
  hole = mask[0, ..., 0] > 0
  assert np.abs(out[0][hole] - image[0][hole]).max() < 1e-4


@pytest.mark.skipif(not HAVE_CV2, reason="opencv-python-headless not installed")
def test_telea_fills_a_flat_image_with_its_colour():
  image = np.full((1, 32, 32, 3), (0.2, 0.5, 0.8), np.float32)
  mask = np.zeros((1, 32, 32, 1), np.float32)
  mask[0, 8:20, 10:24] = 1.0
  out = baselines.inpaint("telea", image, mask)
  # 8-bit in and out, and OpenCV's Telea strays by up to 2 levels even on a flat image
  np.testing.assert_allclose(out[0, 8:20, 10:24], image[0, 8:20, 10:24], atol=3 / 255)


def test_names_are_checked_and_opencv_is_optional(monkeypatch):
  assert baselines.check_names(["Telea", " biharmonic", "telea", ""]) == ("telea", "biharmonic")
  with pytest.raises(ValueError, match=r"unknown baseline 'navier': choose from telea, "):
    baselines.check_names(["telea", "navier"])
  assert baselines.unavailable("biharmonic") is None
  monkeypatch.setitem(sys.modules, "cv2", None)  # as if OpenCV were not installed
  note = baselines.unavailable("telea")
  assert note.startswith("telea skipped") and "opencv-python-headless" in note
  assert "\n" not in note
