"""The input pipeline: shapes and ranges, per-epoch shuffling, resumption, eval passes, sharding."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from PIL import Image

from flowfill_jax import datasets, input_pipeline, masks, sharding
from flowfill_jax.datasets import DataNotFoundError, DatasetError, files


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  datasets.load("demo/small", "train", data_dir=path)
  return path


def _config(data_dir, **overrides):
  c = input_pipeline.default_data_config()
  c.name, c.data_dir, c.image_size, c.batch_size = "demo/small", data_dir, 32, 8
  c.update(overrides)
  return c


def _take(config, n, **kw):
  it = input_pipeline.create_iterator(config, sharding.make_mesh(), **kw)
  return [next(it) for _ in range(n)]


def _assert_same(a, b):
  for k in ("image", "mask"):
    np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


def test_default_config_has_every_field():
  c = input_pipeline.default_data_config()
  for field in ("name", "data_dir", "manual_dir", "image_size", "mask_bucket", "batch_size",
                "num_workers", "mask_dir", "invert_mask"):
    assert field in c
  c.data_dir = "/somewhere"  # None fields still take strings from the command line


def test_train_batches_shapes_dtypes_ranges(demo_dir):
  batch = _take(_config(demo_dir, mask_bucket="40-60"), 2, split="train", seed=0)[1]
  image, mask = batch["image"], batch["mask"]
  assert set(batch) == {"image", "mask"}
  assert isinstance(image, jax.Array) and image.sharding.spec == P("data")
  assert image.shape == (8, 32, 32, 3) and image.dtype == np.float32
  assert mask.shape == (8, 32, 32, 1) and mask.dtype == np.float32
  image, mask = np.asarray(image), np.asarray(mask)
  assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
  assert set(np.unique(mask)) == {0.0, 1.0}
  ratios = mask.mean(axis=(1, 2, 3))
  assert np.all((ratios >= 0.4) & (ratios <= 0.6))


def test_resuming_at_step_k_continues_the_same_stream(demo_dir):
  config = _config(demo_dir)
  stream = _take(config, 5, split="train", seed=3)
  for k in (1, 3):
    resumed = _take(config, 5 - k, split="train", seed=3, start_step=k)
    for a, b in zip(stream[k:], resumed):
      _assert_same(a, b)
  other = _take(config, 1, split="train", seed=4, start_step=3)[0]
  assert not np.array_equal(np.asarray(other["image"]), np.asarray(stream[3]["image"]))


def test_every_epoch_is_a_new_permutation(demo_dir):
  """Records are constant-colour images, so the pixel value names the record."""
  n = 10
  source = [{"image": np.full((40, 60, 3), 20 * i, np.uint8)} for i in range(n)]
  ds = input_pipeline.examples(source, _config(demo_dir), seed=1, train=True, batch_size=4)
  seen = [int(ds[g]["image"][0, 0, 0]) // 20 for g in range(3 * n)]
  epochs = [seen[e * n:(e + 1) * n] for e in range(3)]
  assert all(sorted(e) == list(range(n)) for e in epochs)
  assert epochs[0] != epochs[1] != epochs[2]


def test_eval_pass_is_fixed_padded_and_uses_the_eval_set(demo_dir):
  config = _config(demo_dir, batch_size=24, mask_bucket="20-40")
  first = list(input_pipeline.create_iterator(config, sharding.make_mesh(), split="test",
                                              seed=2, train=False))
  again = list(input_pipeline.create_iterator(config, sharding.make_mesh(), split="test",
                                              seed=2, train=False))
  assert len(first) == 2  # 40 examples → 24 + 16 real, 8 padding rows
  np.testing.assert_array_equal(first[1]["valid"], [1.0] * 16 + [0.0] * 8)
  for a, b in zip(first, again):
    _assert_same(a, b)
  mask = np.concatenate([np.asarray(b["mask"][..., 0]) for b in first])[:40]
  cache = os.path.join(demo_dir, "flowfill_eval_masks")
  np.testing.assert_array_equal(mask, masks.eval_masks("20-40", 40, 32, seed=2, cache_dir=cache))
  source = datasets.load("demo/small", "test", data_dir=demo_dir)
  unflipped = input_pipeline.fit_image(source[5]["image"], 32, None, None) / np.float32(255)
  np.testing.assert_array_equal(np.asarray(first[0]["image"][5]), unflipped)


@pytest.mark.parametrize("train", [True, False])
def test_processes_load_disjoint_rows_of_the_same_global_batch(demo_dir, train):
  config = _config(demo_dir)
  source = datasets.load("demo/small", "train", data_dir=demo_dir)
  whole = next(iter(input_pipeline.local_batches(source, config, seed=0, start_step=2,
                                                 train=train)))
  parts = [next(iter(input_pipeline.local_batches(source, config, seed=0, start_step=2,
                                                  train=train, process_index=p,
                                                  process_count=2))) for p in (0, 1)]
  for k in ("image", "mask"):
    np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])


def test_worker_processes_give_the_same_batches(demo_dir):
  config = _config(demo_dir)
  in_process = _take(config, 2, split="train", seed=0, start_step=5)
  config.num_workers = 2
  it = input_pipeline.create_iterator(config, sharding.make_mesh(), split="train", seed=0,
                                      start_step=5)
  with_workers = [next(it) for _ in range(2)]
  it.close()
  for a, b in zip(in_process, with_workers):
    _assert_same(a, b)


def test_sharded_batch_on_8_devices_equals_unsharded(demo_dir):
  script = f"""
import json, jax, numpy as np
from flowfill_jax import input_pipeline, sharding
c = input_pipeline.default_data_config()
c.name, c.data_dir, c.image_size, c.batch_size = "demo/small", {demo_dir!r}, 32, 8
out = {{}}
for n in (1, 8):
  b = next(input_pipeline.create_iterator(c, sharding.make_mesh(n), split="train", seed=1,
                                          start_step=4))
  out[n] = b
  shards = {{s.data.shape[0] for s in b["image"].addressable_shards}}
print(json.dumps({{"devices": len(out[8]["image"].sharding.device_set), "rows": sorted(shards),
                  "equal": all(np.array_equal(np.asarray(out[1][k]), np.asarray(out[8][k]))
                               for k in ("image", "mask"))}}))
"""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=300)
  assert run.returncode == 0, run.stderr[-3000:]
  assert json.loads(run.stdout.strip().splitlines()[-1]) == {
      "devices": 8, "rows": [1], "equal": True}


def test_external_mask_folder(demo_dir, tmp_path):
  for i, ratio in enumerate((0.25, 0.3, 0.8)):
    hole = np.zeros((64, 64), np.uint8)
    hole[:, :int(ratio * 64)] = 255
    Image.fromarray(hole).save(tmp_path / f"{i}.png")
  config = _config(demo_dir, mask_dir=str(tmp_path), mask_bucket="20-40")
  train = np.asarray(_take(config, 1, split="train", seed=0)[0]["mask"])
  hole_columns = set(np.round(train.mean(axis=(1, 2, 3)) * 32).tolist())  # 16 and 19 of 64
  assert hole_columns <= {8.0, 10.0}
  evaluation = next(input_pipeline.create_iterator(config, sharding.make_mesh(), split="test",
                                                   seed=0, train=False))
  ratios = np.asarray(evaluation["mask"]).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(ratios[:4], [0.25, 0.3125, 0.25, 0.3125])
  config.mask_bucket = "40-60"
  with pytest.raises(DataNotFoundError, match="no mask in .* bucket 40-60"):
    _take(config, 1, split="train", seed=0)


def test_fit_image_square_and_crop():
  photo = np.asarray(Image.new("RGB", (300, 200), (10, 20, 30)))
  photo = photo + np.arange(300, dtype=np.uint8)[None, :, None] // 2  # a horizontal ramp
  whole = input_pipeline.fit_image(photo, 64, None, None)
  expected = files.square_resize(Image.fromarray(photo), 64)
  np.testing.assert_array_equal(whole, np.asarray(expected))
  centre = input_pipeline.fit_image(photo, 50, 50, None)
  np.testing.assert_array_equal(centre, photo[75:125, 125:175])
  crops = {input_pipeline.fit_image(photo, 50, 50, np.random.default_rng(s)).tobytes()
           for s in range(5)}
  assert len(crops) > 1
  assert input_pipeline.fit_image(photo, 32, 256, None).shape == (32, 32, 3)  # enlarged first


def test_bad_configs_are_clear_errors(demo_dir):
  with pytest.raises(DatasetError, match="mask bucket 'most'"):
    _take(_config(demo_dir, mask_bucket="most"), 1, split="train", seed=0)
  with pytest.raises(DataNotFoundError, match="no split 'validation'"):
    _take(_config(demo_dir), 1, split="validation", seed=0)
  with pytest.raises(DataNotFoundError, match="celeba_hq is not prepared"):
    _take(_config(demo_dir, name="celeba_hq"), 1, split="train", seed=0)
