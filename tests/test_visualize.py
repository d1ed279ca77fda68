import numpy as np

from flowfill_jax import visualize


def test_grid_keeps_each_images_aspect_ratio():
  landscape = np.zeros((60, 120, 3), np.float32)
  square = np.ones((60, 60, 1), np.float32)
  sheet = visualize.grid([[landscape, square]], pad=2, min_size=60)
  assert sheet.shape == (2 + 60 + 2, 2 + 120 + 2 + 60 + 2, 3)
  assert (sheet[2:62, 2:122] == 0).all()  # the landscape tile, black, unsquashed
  assert (sheet[2:62, 124:184] == 255).all()  # the mask tile beside it


def test_grid_of_large_photos_is_capped_and_small_priors_upscaled():
  photo = np.random.default_rng(0).random((2000, 3000, 3), np.float32)
  assert visualize.grid([[photo]], pad=0, max_size=512).shape == (512, 768, 3)
  prior = np.eye(4, dtype=np.float32)[..., None]
  sheet = visualize.grid([[prior]], pad=0, min_size=96)
  assert sheet.shape == (96, 96, 3)
  assert (sheet[:24, :24] == 255).all() and (sheet[:24, 24:48] == 0).all()  # nearest: sharp pixels
