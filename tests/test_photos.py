"""The offline photo corpus: whole photographs per split, the stored crops, a missing package."""

import numpy as np
import pytest

from flowfill_jax import datasets, input_pipeline, sharding
from flowfill_jax.config_base import base_config
from flowfill_jax.datasets import DatasetError, photos
from flowfill_jax.datasets.builders import DEMO_OOD_PHOTOS, Photos


def _names(data_dir, split):
  source = Photos(data_dir=data_dir, file_format="array_record").as_data_source(split=split)
  records = [source[i] for i in range(len(source))]
  return [r["name"].decode() if isinstance(r["name"], bytes) else r["name"] for r in records]


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("photos_tfds"))
  datasets.load("photos", "train", data_dir=path)
  return path


def test_splits_hold_whole_disjoint_photographs(photos_dir):
  names = {split: _names(photos_dir, split) for split in ("train", "validation", "test")}
  assert sorted(names["train"]) == sorted(photos.split_names("train"))
  assert len(names["train"]) == 31
  assert set(names["test"]) == set(photos.TEST_PHOTOS) and len(names["test"]) == 400
  assert set(names["validation"]) == set(photos.VALIDATION_PHOTOS)
  assert len(names["validation"]) == 200
  sets = [set(n) for n in names.values()]
  assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
  assert not set(DEMO_OOD_PHOTOS) & set().union(*sets)  # the demo's test_ood stays unseen


def test_stored_images_sizes(photos_dir):
  train = datasets.load("photos", "train", data_dir=photos_dir)
  assert all(min(train[i]["image"].shape[:2]) == photos.SHORT_SIDE for i in range(len(train)))
  test = datasets.load("photos", "test", data_dir=photos_dir)
  assert test[0]["image"].shape == (128, 128, 3) and test[0]["image"].dtype == np.uint8


def test_training_crops_are_multi_scale_squares(photos_dir):
  config = base_config().data
  config.name, config.data_dir, config.image_size, config.batch_size = "photos", photos_dir, 64, 8
  batch = next(input_pipeline.create_iterator(config, sharding.make_mesh(), split="train",
                                              seed=0))
  assert batch["image"].shape == (8, 64, 64, 3)
  rng = np.random.default_rng(0)
  boxes = [photos.random_crop_box(rng, (512, 768)) for _ in range(200)]
  lengths = np.array([b[2] - b[0] for b in boxes])
  assert np.array_equal(lengths, np.array([b[3] - b[1] for b in boxes]))
  assert lengths.min() >= photos.CROP_SIDES[0] and lengths.max() <= photos.CROP_SIDES[1]
  assert lengths.max() - lengths.min() > 100


def test_missing_package_names_the_install_command(tmp_path, monkeypatch):
  monkeypatch.setitem(photos._FILES, "Aqua", str(tmp_path / "not_installed.jpg"))
  with pytest.raises(DatasetError, match="apt-get install mate-backgrounds"):
    datasets.load("photos", "train", data_dir=str(tmp_path / "tfds"))
