"""CelebA-HQ at 256²: the paper's model and training, every deviation off (docs/design.md).

`--config configs/celeba.py:improved` adds this project's measured improvements
(`config_base.measured_improvements`).
"""

import ml_collections

from flowfill_jax.config_base import base_config, measured_improvements


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = base_config()
  config.data.name = "celeba_hq"
  config.data.train_split = "train"
  config.data.eval_split = "test"
  if arg == "improved":
    measured_improvements(config)
  elif arg:
    raise ValueError(f"configs/celeba.py takes no argument or 'improved', got {arg!r}")
  return config
