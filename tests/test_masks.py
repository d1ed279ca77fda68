"""Free-form masks: buckets respected, evaluation sets byte-identical, external mask folders."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from flowfill_jax import masks
from flowfill_jax.datasets import DataNotFoundError, DatasetError


@pytest.mark.parametrize("bucket", ["20-40", "40-60", "random"])
def test_thousand_masks_inside_their_bucket(bucket):
  lo, hi = masks.BUCKETS[bucket]
  rng = np.random.default_rng(0)
  batch = np.stack([masks.free_form_mask(rng, 128, bucket) for _ in range(1000)])
  assert batch.dtype == np.uint8 and set(np.unique(batch)) == {0, 1}
  ratios = batch.mean(axis=(1, 2))
  assert np.all((ratios >= lo) & (ratios <= hi))
  assert ratios.max() - ratios.min() > 0.6 * (hi - lo)  # spread over the bucket
  assert len({m.tobytes() for m in batch}) == 1000


def test_any_range_and_sizes():
  for size, bucket in ((256, "10-15"), (32, (0.5, 0.7)), (64, "random")):
    m = masks.free_form_mask(np.random.default_rng(1), size, bucket)
    lo, hi = masks.ratio_range(bucket)
    assert m.shape == (size, size) and lo <= m.mean() <= hi


def test_same_rng_same_mask():
  a = masks.free_form_mask(np.random.default_rng([3, 4]), 64, "40-60")
  b = masks.free_form_mask(np.random.default_rng([3, 4]), 64, "40-60")
  np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", ["lots", "60-40", "0-150", (0.5,)])
def test_bad_bucket_is_a_clear_error(bad):
  with pytest.raises(DatasetError, match="mask bucket"):
    masks.ratio_range(bad)


def _digests(paths):
  return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]


def test_eval_masks_byte_identical_across_runs(tmp_path):
  here = masks.write_eval_masks(str(tmp_path / "a"), "40-60", 6, 64, seed=3)
  script = ("import sys; from flowfill_jax import masks; "
            "print('\\n'.join(masks.write_eval_masks(sys.argv[1], '40-60', 6, 64, seed=3)))")
  run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "b")], check=True,
                       capture_output=True, text=True)
  assert _digests(here) == _digests(run.stdout.split())
  other_seed = masks.write_eval_masks(str(tmp_path / "c"), "40-60", 6, 64, seed=4)
  assert not set(_digests(here)) & set(_digests(other_seed))
  img = np.asarray(Image.open(here[0]))
  assert img.shape == (64, 64) and set(np.unique(img)) == {0, 255}  # white = hole
  assert 0.4 <= (img == 255).mean() <= 0.6


def test_eval_set_cached_and_indexed(tmp_path):
  cache = str(tmp_path)
  first = masks.eval_masks("20-40", 5, 32, seed=1, cache_dir=cache)
  assert first.shape == (5, 32, 32) and first.dtype == np.uint8
  np.testing.assert_array_equal(masks.eval_masks("20-40", 5, 32, seed=1, cache_dir=cache),
                                first)
  # Mask i depends on (seed, bucket, i) only, so any subset reads the same masks.
  np.testing.assert_array_equal(masks.eval_mask("20-40", 3, 32, seed=1, cache_dir=cache),
                                first[3])
  written = masks.write_eval_masks(str(tmp_path / "w"), "20-40", 5, 32, seed=1)
  np.testing.assert_array_equal(np.stack([masks.read_mask_png(p) for p in written]), first)


def _write_masks(folder, ratios, size=100, white_hole=True):
  folder.mkdir(parents=True, exist_ok=True)
  for i, ratio in enumerate(ratios):
    hole = np.zeros((size, size), bool)
    hole[:, :round(ratio * size)] = True
    Image.fromarray(((hole if white_hole else ~hole) * 255).astype(np.uint8)).save(
        folder / f"m{i}.png")


def test_external_folder_sorted_into_buckets(tmp_path, caplog):
  _write_masks(tmp_path / "m", [0.3, 0.5, 0.9])
  (tmp_path / "m" / "broken.png").write_bytes(b"not a png")
  found = masks.load_mask_folder(str(tmp_path / "m"))
  assert [len(found[b]) for b in ("20-40", "40-60", "random")] == [1, 1, 2]
  assert "broken.png" in caplog.text and "skipped 1 unreadable" in caplog.text
  assert found["40-60"][0].dtype == np.uint8 and found["40-60"][0].mean() == 0.5
  resized = masks.load_mask_folder(str(tmp_path / "m"), size=32, buckets=("45-55",))
  assert resized["45-55"][0].shape == (32, 32)


def test_external_folder_inverted(tmp_path):
  _write_masks(tmp_path / "m", [0.3, 0.5], white_hole=False)  # white = known
  found = masks.load_mask_folder(str(tmp_path / "m"), invert=True)
  assert [len(found[b]) for b in ("20-40", "40-60")] == [1, 1]
  assert len(masks.load_mask_folder(str(tmp_path / "m"))["20-40"]) == 0  # read as 70%, 50%


def test_missing_or_empty_mask_folder(tmp_path):
  with pytest.raises(DataNotFoundError, match="does not exist"):
    masks.load_mask_folder(str(tmp_path / "nothing"))
  (tmp_path / "junk").mkdir()
  (tmp_path / "junk" / "a.png").write_bytes(b"junk")
  with pytest.raises(FileNotFoundError, match="no readable mask"):
    masks.load_mask_folder(str(tmp_path / "junk"))
