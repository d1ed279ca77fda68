"""Paris StreetView, random 256² crops of the full-size images (paper §4.1)."""

import ml_collections

from flowfill_jax.config_base import base_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = base_config()
  config.data.name = "paris_streetview"
  config.data.train_split = "train"
  config.data.eval_split = "test"
  return config
