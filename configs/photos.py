"""The shipped model's recipe: both stages at 128² on the offline photo corpus.

The corpus (`flowfill_jax/datasets/photos.py`) is 43 photographs from Debian's wallpaper
packages and the Python dependencies; `test` is 8 whole photographs no training crop comes
from and `validation` 4 others, on which the settings below were chosen. Sized to train on
one GPU in minutes (README "The shipped model"); on 2 CPU cores it runs, slowly.
"""

import ml_collections

from flowfill_jax.config_base import base_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = base_config()
  config.data.name = "photos"
  config.data.image_size = 128
  config.data.train_split = "train"
  config.data.eval_split = "validation"
  config.data.num_workers = 8

  s = config.model.structure
  s.prior_size = 32
  s.levels = 3
  s.steps = 8
  s.hidden = 64
  s.encoder_cnum = 32
  s.lowres_width = 32

  t = config.model.texture
  t.base_features = 32
  t.num_res_blocks = 4
  t.disc_features = (32, 64, 128, 128)
  t.upsample = "resize"

  config.structure.steps = 6000
  config.structure.batch_size = 64
  config.structure.lr = 1e-3
  config.texture.steps = 4000
  config.texture.batch_size = 32
  config.texture.lr = 5e-4
  config.texture.adv_weight = 0.03
  config.structure.temperature = 0.8
  for stage in (config.structure, config.texture):
    stage.log_every = 100
    stage.checkpoint_every = 500
    stage.keep_checkpoints = 1
    stage.eval_every = 1000
    stage.eval_batches = 4
    stage.sample_every = 2000
  if arg == "smoke":  # seconds on a CPU: checks the recipe end to end
    config.structure.steps = config.texture.steps = 4
    config.structure.batch_size = config.texture.batch_size = 4
    for stage in (config.structure, config.texture):
      stage.log_every = stage.eval_every = stage.checkpoint_every = stage.sample_every = 2
      stage.eval_batches = 1
  elif arg:
    raise ValueError(f"configs/photos.py takes no argument or 'smoke', got {arg!r}")
  return config
