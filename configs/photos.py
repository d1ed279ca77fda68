"""The shipped model: both stages on the offline photo corpus, sized to train on 2 CPU cores.

The corpus (`flowfill_jax/datasets/photos.py`) is 43 photographs from Debian's wallpaper
packages and the Python dependencies; `test` is 8 whole photographs no training crop comes
from and `validation` 4 others, where settings are chosen (`data.eval_split`). The model is
`config_base.small_model` (64², prior 16²) with the measured improvements.

`--config configs/photos.py:gpu` is the 128² recipe (prior 32², a larger G) for one GPU
(experiments/notes_photos.md).
"""

import ml_collections

from flowfill_jax.config_base import base_config, measured_improvements, small_model


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = base_config()
  measured_improvements(config)
  small_model(config)
  config.data.name = "photos"
  config.data.train_split = "train"
  config.data.eval_split = "validation"
  config.structure.steps = 12000
  config.structure.grad_clip = 100.0  # gradient norms run at 20-40; a spike is cut, not taken
  config.texture.steps = 4000
  config.sample.temperature = 0.8  # chosen on `validation` (experiments/notes_photos.md)
  for stage in (config.structure, config.texture):
    stage.log_every = 100
    stage.checkpoint_every = 500
    stage.eval_every = 1000
    stage.eval_batches = 4
    stage.sample_every = 2000
  if arg == "gpu":
    _gpu(config)
  elif arg == "smoke":  # seconds on a CPU: checks the recipe end to end
    config.structure.steps = config.texture.steps = 4
    config.structure.batch_size = config.texture.batch_size = 4
    for stage in (config.structure, config.texture):
      stage.log_every = stage.eval_every = stage.checkpoint_every = stage.sample_every = 2
      stage.eval_batches = 1
  elif arg:
    raise ValueError(f"configs/photos.py takes no argument, 'gpu' or 'smoke', got {arg!r}")
  return config


def _gpu(config: ml_collections.ConfigDict) -> None:
  """128², prior 32²: for one GPU (`experiments/train_in_budget.py` fits it to a time)."""
  config.data.image_size = 128
  config.data.num_workers = 8  # masks and crops are drawn in Python: one process is ~600 img/s
  s = config.model.structure
  s.prior_size, s.levels, s.steps, s.hidden, s.encoder_cnum = 32, 3, 8, 64, 32
  s.lowres_width = 32
  t = config.model.texture
  t.base_features, t.num_res_blocks, t.disc_features = 32, 4, (32, 64, 128, 128)
  config.structure.batch_size = 64
  config.structure.lr = 5e-4  # 1e-3 at batch 64 diverged at step 118 on an H200
  config.texture.batch_size = 32
  for stage in (config.structure, config.texture):
    stage.keep_checkpoints = 1
