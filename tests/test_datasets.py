"""tfds builders on small folders of real photographs: layouts, bad files, clear errors, demo."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from flowfill_jax import datasets
from flowfill_jax.datasets import DataNotFoundError, DatasetError
from flowfill_jax.datasets import demo

PHOTOS = (skdata.astronaut, skdata.coffee, skdata.chelsea, skdata.rocket)


def _photo(i: int, width: int = 96, height: int = 64) -> Image.Image:
  return Image.fromarray(PHOTOS[i % len(PHOTOS)]()).resize((width, height), Image.BICUBIC)


def _write(folder, count, fmt="PNG", **size):
  folder.mkdir(parents=True, exist_ok=True)
  for i in range(count):
    _photo(i, **size).save(folder / f"{i:02d}.{fmt.lower()}", format=fmt)


def _load(name, split, tmp_path, manual=None):
  return datasets.load(name, split, data_dir=str(tmp_path / "tfds"),
                       manual_dir=None if manual is None else str(manual))


def test_image_folder_skips_and_reports_bad_files(tmp_path, caplog):
  root = tmp_path / "photos"
  _write(root / "train", 3)
  _write(root / "test", 2, fmt="JPEG")
  (root / "train" / "broken.jpg").write_bytes(b"garbage")
  (root / "train" / "notes.txt").write_text("not an image extension: ignored")
  train = _load("image_folder", "train", tmp_path, root)
  assert len(train) == 3
  assert "broken.jpg" in caplog.text and "skipped 1 unreadable or missing file(s) of 4" in (
      caplog.text)
  builder = datasets.make_builder("image_folder", str(tmp_path / "tfds"), str(root))
  assert builder.info.metadata["skipped_files"] == {"train": ["train/broken.jpg"], "test": []}
  item = train[0]
  assert item["image"].shape == (256, 256, 3) and item["image"].dtype == np.uint8
  assert len(_load("image_folder", "test", tmp_path, root)) == 2
  with pytest.raises(DataNotFoundError, match="has no split 'validation'.*test, train"):
    _load("image_folder", "validation", tmp_path, root)


def test_image_folder_without_splits_is_all_train(tmp_path):
  _write(tmp_path / "flat", 2)
  assert len(_load("image_folder", "train", tmp_path, tmp_path / "flat")) == 2


def test_resize_is_centre_square_then_antialiased(tmp_path):
  _write(tmp_path / "one" / "train", 1, width=400, height=300)
  stored = _load("image_folder", "train", tmp_path, tmp_path / "one")[0]["image"]
  expected = _photo(0, 400, 300).crop((50, 0, 350, 300)).resize((256, 256), Image.BICUBIC,
                                                                reducing_gap=2.0)
  np.testing.assert_array_equal(stored, np.asarray(expected))


def test_celeba_original_split_from_the_release_files(tmp_path):
  root = tmp_path / "celeba"
  _write(root / "CelebA-HQ-img", 5, fmt="JPEG", width=64, height=64)
  for i in range(5):
    (root / "CelebA-HQ-img" / f"{i:02d}.jpeg").rename(root / "CelebA-HQ-img" / f"{i}.jpg")
  (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
      "idx orig_idx orig_file\n" + "".join(f"{i} {i + 10} {i + 11:06d}.jpg\n" for i in range(5)))
  partition = {11: 0, 12: 2, 13: 0, 14: 1, 15: 2, 16: 0}  # CelebA's: 0 train, 1 val, 2 test
  (root / "list_eval_partition.txt").write_text(
      "".join(f"{k:06d}.jpg {v}\n" for k, v in partition.items()))
  sizes = {s: len(_load("celeba_hq", s, tmp_path, root)) for s in ("train", "validation", "test")}
  assert sizes == {"train": 2, "validation": 1, "test": 2}


def test_places2_folders_and_a_places365_style_list(tmp_path):
  root = tmp_path / "places"
  _write(root / "data_256" / "a" / "airfield", 2, fmt="JPEG", width=256, height=256)
  _write(root / "val_256", 3, fmt="JPEG", width=256, height=256)
  (root / "val.txt").write_text("00.jpeg 165\n02.jpeg 3\n")  # path label, relative to val_256
  assert len(_load("places2", "train", tmp_path, root)) == 2
  val = _load("places2", "validation", tmp_path, root)
  assert len(val) == 2
  # RGB JPEGs already at 256² are stored byte for byte: same pixels as decoding the file.
  names = {val[i]["file_name"].decode(): val[i]["image"] for i in range(2)}
  np.testing.assert_array_equal(names["val_256/02.jpeg"],
                                np.asarray(Image.open(root / "val_256" / "02.jpeg")))


def test_paris_is_stored_at_full_size(tmp_path):
  root = tmp_path / "paris"
  _write(root / "paris_train_original", 2, fmt="JPEG", width=300, height=172)
  _write(root / "paris_eval_gt", 1, width=300, height=172)
  assert _load("paris_streetview", "train", tmp_path, root)[0]["image"].shape == (172, 300, 3)
  assert len(_load("paris_streetview", "test", tmp_path, root)) == 1


def test_missing_or_empty_data_are_clear_errors(tmp_path):
  with pytest.raises(DataNotFoundError, match="no manual_dir was given.*train/ val/ test/"):
    _load("celeba_hq", "train", tmp_path)
  with pytest.raises(FileNotFoundError, match="is not a folder; expected.*data_256/"):
    _load("places2", "train", tmp_path, tmp_path / "missing")
  (tmp_path / "nothing" / "other").mkdir(parents=True)
  (tmp_path / "nothing" / "other" / "x.png").write_bytes(b"x")
  with pytest.raises(DataNotFoundError, match="no split found in .*paris_train_original/"):
    _load("paris_streetview", "train", tmp_path, tmp_path / "nothing")
  (tmp_path / "bad" / "train").mkdir(parents=True)
  (tmp_path / "bad" / "train" / "a.png").write_bytes(b"junk")
  with pytest.raises(DataNotFoundError, match="none of the 1 file.*is a readable image"):
    _load("image_folder", "train", tmp_path, tmp_path / "bad")
  (tmp_path / "empty" / "train").mkdir(parents=True)
  (tmp_path / "empty" / "README").write_text("no images here")
  with pytest.raises(DataNotFoundError, match="train: no image files"):
    _load("celeba_hq", "train", tmp_path, tmp_path / "empty")
  with pytest.raises(DatasetError, match="unknown dataset 'imagenet'"):
    _load("imagenet", "train", tmp_path)


def test_demo_splits_come_from_disjoint_photos(tmp_path):
  assert not set(demo.TRAIN_PHOTOS) & set(demo.TEST_PHOTOS)
  train = datasets.load("demo/small", "train", data_dir=str(tmp_path))
  test = datasets.load("demo/small", "test", data_dir=str(tmp_path))
  assert (len(train), len(test)) == (300, 40)
  assert train[0]["image"].shape == (128, 128, 3) and train[0]["image"].dtype == np.uint8
  photo_of = lambda source: {source[i]["file_name"].decode().split("/")[0]
                             for i in range(len(source))}
  assert photo_of(train) == set(demo.TRAIN_PHOTOS)
  assert photo_of(test) == set(demo.TEST_PHOTOS)


def test_demo_crops_are_deterministic():
  photo = Image.fromarray(demo.photo("coffee"))
  crops = [demo.random_crop(np.random.default_rng(7), photo) for _ in range(2)]
  assert crops[0].size == (128, 128)
  buf = [io.BytesIO() for _ in crops]
  for c, b in zip(crops, buf):
    c.save(b, format="PNG")
  assert buf[0].getvalue() == buf[1].getvalue()
