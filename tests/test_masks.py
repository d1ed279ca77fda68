"""Free-form masks: buckets respected, fixed evaluation sets reproducible, external folders."""

import os

import numpy as np
import pytest
from PIL import Image

from flowfill_jax import masks


@pytest.mark.parametrize("bucket", ["20-40", "40-60", "random"])
def test_thousand_masks_inside_their_bucket(bucket):
  lo, hi = masks.BUCKETS[bucket]
  rng = np.random.default_rng(0)
  ratios = np.array([masks.free_form_mask(rng, 64, bucket).mean() for _ in range(1000)])
  assert np.all((ratios >= lo) & (ratios <= hi))
  assert ratios.std() > 0.01  # not one mask over and over


def test_custom_range_and_bad_bucket():
  m = masks.free_form_mask(np.random.default_rng(1), 128, "10-15")
  assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1} and 0.10 <= m.mean() <= 0.15
  with pytest.raises(ValueError, match="mask bucket"):
    masks.ratio_range("lots")


def test_eval_masks_byte_identical_across_runs(tmp_path):
  a = masks.write_eval_masks(str(tmp_path / "a"), "40-60", 5, 64, seed=3)
  b = masks.write_eval_masks(str(tmp_path / "b"), "40-60", 5, 64, seed=3)
  c = masks.write_eval_masks(str(tmp_path / "c"), "40-60", 5, 64, seed=4)
  assert [open(p, "rb").read() for p in a] == [open(p, "rb").read() for p in b]
  assert [open(p, "rb").read() for p in a] != [open(p, "rb").read() for p in c]
  img = np.asarray(Image.open(a[0]))
  assert img.shape == (64, 64) and set(np.unique(img)) <= {0, 255}  # white = hole


def test_external_folder_sorted_by_ratio(tmp_path):
  for i, ratio in enumerate([0.3, 0.5, 0.9]):
    m = np.zeros((100, 100), np.uint8)
    m[:, :int(ratio * 100)] = 255
    Image.fromarray(m).save(tmp_path / f"m{i}.png")
  by_bucket = masks.load_mask_folder(str(tmp_path))
  assert [len(by_bucket[b]) for b in ("20-40", "40-60", "random")] == [1, 1, 2]
  inverted = masks.load_mask_folder(str(tmp_path), invert=True)
  assert len(inverted["40-60"]) == 1 and len(inverted["20-40"]) == 0
  with pytest.raises(FileNotFoundError, match="no mask images"):
    masks.load_mask_folder(str(tmp_path / "nothing"))


def test_external_folder_fills_a_custom_bucket(tmp_path):
  for i, ratio in enumerate([0.15, 0.25, 0.5]):
    m = np.zeros((100, 100), np.uint8)
    m[:, :int(ratio * 100)] = 255
    Image.fromarray(m).save(tmp_path / f"m{i}.png")
  by_bucket = masks.load_mask_folder(str(tmp_path), buckets=("10-30",))
  assert list(by_bucket) == ["10-30"]
  assert sorted(float(m.mean()) for m in by_bucket["10-30"]) == [0.15, 0.25]


def test_eval_mask_cache_is_keyed_by_generator_version(monkeypatch):
  before = masks.eval_mask_dir(64, 0)
  monkeypatch.setattr(masks, "GENERATOR_VERSION", masks.GENERATOR_VERSION + 1)
  assert masks.eval_mask_dir(64, 0) != before
  assert masks.eval_mask_dir(64, 0).startswith(os.environ["FLOWFILL_CACHE_DIR"])  # not ~/.cache


def test_mask_folder_resized_keeps_every_hole_whichever_colour_means_hole(tmp_path):
  """A 64² file shrunk to 16²: a hole stroke 2 px wide stays a hole (any-hole), with white = hole
  and, inverted, with black = hole."""
  from PIL import Image
  hole = np.zeros((64, 64), bool)
  hole[:, 30:32] = True  # 2 of every 4 columns of one low-res column: 1/32 of the image
  hole[8:40, 8:40] = True  # and a box, so the ratio falls in a bucket
  for name, invert in (("white_hole", False), ("black_hole", True)):
    folder = tmp_path / name
    folder.mkdir()
    pixels = hole if not invert else ~hole
    Image.fromarray(pixels.astype(np.uint8) * 255).save(folder / "m.png")
    loaded = masks.load_mask_folder(str(folder), invert=invert, size=16, buckets=("10-60",))
    (mask,) = loaded["10-60"]
    assert mask.shape == (16, 16) and mask[:, 7].all(), name
