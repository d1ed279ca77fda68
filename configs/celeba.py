"""CelebA-HQ at 256², the paper's settings (SPEC.md)."""

import ml_collections

from flowfill_jax.config_base import base_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = base_config()
  config.data.name = "celeba_hq"
  config.data.train_split = "train"
  config.data.eval_split = "test"
  return config
