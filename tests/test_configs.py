"""The config files: each builds its models, and the shipped model is the photos recipe."""

import importlib.util
import json
import pathlib

import jax
import numpy as np
import pytest

from flowfill_jax import factory
from flowfill_jax.inference import SHIPPED_MODEL, load_config
from flowfill_jax.models.discriminator import PatchDiscriminator
from flowfill_jax.models.flow import StructurePrior
from flowfill_jax.models.generator import TextureGenerator

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def _config(name, arg=None):
  spec = importlib.util.spec_from_file_location(f"config_{name}", CONFIGS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _size(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("name,arg", [("celeba", None), ("celeba", "improved"), ("places2", None),
                                      ("paris", None),
                                      ("demo", None), ("demo", "ship"), ("photos", None),
                                      ("photos", "gpu"), ("photos", "smoke")])
def test_every_config_builds_its_models(name, arg):
  config = _config(name, arg)
  assert _size(factory.abstract_structure_variables(config)) > 0
  assert _size(factory.abstract_generator_params(config)) > 0


@pytest.mark.parametrize("name", ["celeba", "places2", "paris"])
def test_paper_configs_build_the_papers_models(name):
  """The paper configs are the paper: their models are the modules' defaults, every deviation
  off (`StructurePrior()`, `TextureGenerator()`, `PatchDiscriminator()`, no pasted prior)."""
  config = _config(name)
  assert factory.structure_prior(config) == StructurePrior()
  assert factory.generator(config) == TextureGenerator()
  assert factory.discriminator(config) == PatchDiscriminator()
  assert not factory.two_stage(config).paste_known_prior
  assert config.structure.coarse_l1_weight == 0.0


def test_improved_paper_size_stage_1_stays_near_the_papers_size():
  """With the measured improvements (the low-res condition projected to 32 channels), the
  paper-size E + f has at most 20M parameters (38M with the raw space-to-depth)."""
  improved = _size(factory.abstract_structure_variables(_config("celeba", "improved"))["params"])
  paper = _size(factory.abstract_structure_variables(_config("celeba"))["params"])
  assert paper < improved <= 20e6


def test_projected_lowres_condition_keeps_the_gpu_recipe_small():
  """`lowres_width` is what keeps the 128² recipe's E + f under 8M parameters (10.6M without)."""
  config = _config("photos", "gpu")
  projected = _size(factory.abstract_structure_variables(config))
  config.model.structure.lowres_width = 0
  raw = _size(factory.abstract_structure_variables(config))
  assert projected < 8e6 < 1e7 < raw


def test_shipped_model_is_the_photos_recipe():
  """README's two commands (train configs/photos.py, export) give the shipped model's config."""
  shipped = load_config(SHIPPED_MODEL)
  recipe = json.loads(_config("photos").to_json_best_effort())
  saved = json.loads(shipped.to_json_best_effort())
  for section in ("model", "structure", "texture"):
    assert saved[section] == recipe[section], section
  assert saved["data"]["name"] == "photos"
  assert saved["data"]["image_size"] == recipe["data"]["image_size"]
