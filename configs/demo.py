"""A small model on the offline demo photographs: trains both stages on 2 CPU cores.

Not a benchmark: the data are crops of ten bundled photographs (see README); the
test split is held-out regions of the eight training photographs, test_ood two others.

`--config configs/demo.py:ship` is the recipe of the demo model the package shipped before the
photo model (configs/photos.py): the same model trained longer (~40 min on 2 cores), with the
harmonic fill, adversarial weight 0.1 and τ = 0.8.
"""

import ml_collections

from flowfill_jax.config_base import base_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = base_config()
  config.data.name = "demo"
  config.data.image_size = 64
  config.data.eval_split = "test"

  s = config.model.structure
  s.prior_size = 16
  s.levels = 3
  s.steps = 4
  s.hidden = 32
  s.encoder_cnum = 16

  t = config.model.texture
  t.base_features = 16
  t.num_res_blocks = 2
  t.disc_features = (16, 32, 64, 64)
  # Nearest ×2 + conv up-sampling: as good as ICNR transposed convs here and 1.75× faster to train
  # on XLA:CPU, which runs transposed convs slowly (experiments/notes_texture.md).
  t.upsample = "resize"

  config.structure.steps = 3000
  config.structure.batch_size = 16
  config.structure.lr = 1e-3
  config.texture.steps = 1500
  config.texture.batch_size = 8
  config.texture.lr = 5e-4
  # The paper's 0.1 left coloured specks in the demo's holes; 0.03 gave completions closer to
  # the truth (VGG LPIPS) with diversity above 0.05 (experiments/notes_texture.md §7).
  config.texture.adv_weight = 0.03
  # Sampling temperature, also that of the noise in G's training priors. On the demo the flow's
  # samples vary mostly as noise around the smooth fill, so τ trades LPIPS to the truth against
  # diversity one for one; at 0.65 VGG diversity stays above 0.05 and, on the 400 test crops, the
  # completions are as close to the truth as biharmonic's, closer than Telea's
  # (experiments/notes_texture.md §8). `--temperature` overrides it per call.
  config.structure.temperature = 0.65
  for stage in (config.structure, config.texture):
    stage.log_every = 50
    stage.checkpoint_every = 250
    stage.eval_every = 250
    stage.eval_batches = 4
    stage.sample_every = 1500
  if arg == "ship":
    config.structure.steps = 8000
    config.texture.steps = 4000
    config.model.smooth_fill = "harmonic"
    config.texture.adv_weight = 0.1
    config.structure.temperature = 0.8
    config.structure.sample_every = config.texture.sample_every = 2000
  elif arg:
    raise ValueError(f"configs/demo.py takes no argument or 'ship', got {arg!r}")
  return config
