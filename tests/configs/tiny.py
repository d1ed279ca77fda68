"""The demo config shrunk for tests: 32² images, 8² prior, a few steps of each stage."""

import os

from flowfill_jax.config_base import base_config, measured_improvements


def get_config(arg=None):
  c = base_config()
  measured_improvements(c)
  c.data.name = "demo"
  c.data.data_dir = os.environ.get("FLOWFILL_TEST_DATA_DIR")
  c.data.image_size = 32
  s = c.model.structure
  s.prior_size, s.levels, s.steps, s.hidden, s.encoder_cnum = 8, 2, 2, 8, 8
  s.lowres_width = 0
  s.scan_unroll = 1  # compiles one step per level: tests are compile-bound
  t = c.model.texture
  t.base_features, t.num_res_blocks, t.disc_features = 8, 1, (8, 16, 16, 16)
  c.structure.steps, c.texture.steps = 6, 4
  c.structure.lr, c.texture.lr = 2e-3, 1e-3
  for stage in (c.structure, c.texture):
    stage.batch_size = 8
    stage.log_every = 2
    stage.checkpoint_every = 3
    stage.eval_every = 3
    stage.sample_every = 3
    stage.eval_batches = 1
    stage.num_samples = 2
    stage.sample_inputs = 2
  return c
