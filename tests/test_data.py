"""tfds builders and the input pipeline: layouts, bad files, shapes, resumption, sharding."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import xla_flags
from skimage import data as skdata

from flowfill_jax import datasets, input_pipeline, sharding
from flowfill_jax.config_base import base_config
from flowfill_jax.datasets import DatasetError
from flowfill_jax.visualize import write_png


def _folder(root, split_files):
  photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
  for split, count in split_files.items():
    os.makedirs(root / split, exist_ok=True)
    for i in range(count):
      write_png(str(root / split / f"{i}.png"), photos[i % 4][:200, :300] / 255.0)
  return root


def test_image_folder_builder_skips_and_counts_bad_files(tmp_path, caplog):
  root = _folder(tmp_path / "manual", {"train": 3, "test": 2})
  (root / "train" / "broken.jpg").write_bytes(b"garbage")
  source = datasets.load("image_folder", "train", data_dir=str(tmp_path / "tfds"),
                         manual_dir=str(root))
  assert len(source) == 3
  assert source[0]["image"].shape == (256, 256, 3) and source[0]["image"].dtype == np.uint8
  assert "broken.jpg" in caplog.text and "skipped 1 unreadable" in caplog.text
  assert len(datasets.load("image_folder", "test", data_dir=str(tmp_path / "tfds"))) == 2
  with pytest.raises(DatasetError, match="no split 'validation'"):
    datasets.load("image_folder", "validation", data_dir=str(tmp_path / "tfds"))


def test_folder_images_are_stored_as_the_sample_command_reads_them(tmp_path):
  """A 16-bit PNG by its range (Pillow's own RGB conversion clips it white) and a phone JPEG
  upright (its EXIF orientation applied), kept at full size by the Paris builder."""
  from PIL import Image
  root = tmp_path / "paris"
  os.makedirs(root / "paris_train_original")
  ramp = (np.linspace(0, 65535, 40 * 60).reshape(40, 60)).astype(np.uint16)
  Image.fromarray(ramp).save(root / "paris_train_original" / "a_wide.png")
  exif = Image.Exif()
  exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
  Image.fromarray(skdata.astronaut()[:40, :60]).save(root / "paris_train_original" / "b_phone.jpg",
                                                     exif=exif)
  source = datasets.load("paris_streetview", "train", data_dir=str(tmp_path / "tfds"),
                         manual_dir=str(root))
  shapes = sorted((source[i]["image"].shape, i) for i in range(len(source)))
  assert [shape for shape, _ in shapes] == [(40, 60, 3), (60, 40, 3)]  # the phone's upright
  wide = source[shapes[0][1]]["image"]
  np.testing.assert_array_equal(wide[..., 0], np.round(ramp / 65535 * 255).astype(np.uint8))


def test_paris_keeps_full_size_and_celeba_layout(tmp_path):
  root = _folder(tmp_path / "paris", {"paris_train_original": 2, "paris_eval_gt": 1})
  source = datasets.load("paris_streetview", "train", data_dir=str(tmp_path / "tfds"),
                         manual_dir=str(root))
  assert source[0]["image"].shape == (200, 300, 3)
  root = _folder(tmp_path / "celeba", {"train": 2, "val": 1, "test": 1})
  assert len(datasets.load("celeba_hq", "validation", data_dir=str(tmp_path / "tfds"),
                           manual_dir=str(root))) == 1


def test_missing_or_empty_data_is_a_clear_error(tmp_path):
  with pytest.raises(DatasetError, match="no manual_dir was given"):
    datasets.load("celeba_hq", "train", data_dir=str(tmp_path / "tfds"))
  with pytest.raises(DatasetError, match="is not a folder"):
    datasets.load("places2", "train", data_dir=str(tmp_path / "tfds"),
                  manual_dir=str(tmp_path / "missing"))
  os.makedirs(tmp_path / "empty" / "train")
  (tmp_path / "empty" / "train" / "a.png").write_bytes(b"junk")
  with pytest.raises(DatasetError, match="no readable image"):
    datasets.load("image_folder", "train", data_dir=str(tmp_path / "tfds2"),
                  manual_dir=str(tmp_path / "empty"))
  with pytest.raises(DatasetError, match="unknown dataset"):
    datasets.load("imagenet", "train")


def _demo_records(data_dir, split):
  """(photo name, crop box) of every stored record of a demo split, and its source."""
  from flowfill_jax.datasets.builders import Demo
  source = Demo(data_dir=data_dir, file_format="array_record").as_data_source(split=split)
  records = [source[i] for i in range(len(source))]
  return [(r["name"].decode() if isinstance(r["name"], bytes) else r["name"],
           tuple(int(v) for v in r["box"])) for r in records]


def test_demo_splits_counts_and_no_shared_pixels(data_dir):
  """validation and test are in-distribution but unseen (held-out regions), test_ood unseen
  photos; no two of train, validation and test share a pixel."""
  from flowfill_jax.datasets.builders import (
    DEMO_COUNTS,
    DEMO_OOD_PHOTOS,
    demo_crops,
    demo_holdout,
    demo_photos,
  )
  assert DEMO_COUNTS == {"train": 4000, "validation": 200, "test": 400, "test_ood": 200}
  photos = demo_photos()
  shapes = {name: photo.shape for name, photo in photos.items()}
  crops = {}
  for split, count in DEMO_COUNTS.items():
    source = datasets.load("demo", split, data_dir=data_dir)
    assert len(source) == count
    assert source[0]["image"].shape == (128, 128, 3) and source[0]["image"].dtype == np.uint8
    crops[split] = _demo_records(data_dir, split)
    assert sorted(crops[split]) == sorted(demo_crops(shapes, split))  # built = the pure rule
  train_names = {name for name, _ in crops["train"]}
  assert {name for name, _ in crops["test"]} == train_names  # same photos, other regions
  assert {name for name, _ in crops["validation"]} == train_names
  assert {name for name, _ in crops["test_ood"]} == set(DEMO_OOD_PHOTOS)
  assert not train_names & set(DEMO_OOD_PHOTOS)
  assert len(train_names) == 8
  for name in train_names:
    boxes = {split: np.array([box for n, box in crops[split] if n == name])
             for split in ("train", "validation", "test")}
    for split in ("validation", "test"):
      y0, x0, y1, x1 = demo_holdout(shapes[name], split)
      held = boxes[split]
      assert np.all((held[:, 0] >= y0) & (held[:, 1] >= x0) & (held[:, 2] <= y1)
                    & (held[:, 3] <= x1)), (name, split)
    # Every pair of boxes from two different splits is disjoint: separated along y or x.
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
      t, e = boxes[a][:, None], boxes[b][None]
      apart = (t[..., 2] <= e[..., 0]) | (e[..., 2] <= t[..., 0]) | (t[..., 3] <= e[..., 1]) | (
          e[..., 3] <= t[..., 1])
      assert apart.all(), (name, a, b)
    train, test = boxes["train"], boxes["test"]
    sides = np.concatenate([train[:, 2] - train[:, 0], test[:, 2] - test[:, 0]])
    assert sides.min() >= 128 and sides.max() > 160  # several scales
    assert np.array_equal(train[:, 2] - train[:, 0], train[:, 3] - train[:, 1])  # square
  # The stored box is where the pixels came from.
  from PIL import Image
  name, (y0, x0, y1, x1) = crops["test"][0]
  expected = Image.fromarray(photos[name][y0:y1, x0:x1]).resize((128, 128), Image.BICUBIC,
                                                                 reducing_gap=2.0)
  np.testing.assert_array_equal(datasets.load("demo", "test", data_dir=data_dir)[0]["image"],
                                np.asarray(expected))


def _data_config(data_dir, **kw):
  c = base_config().data
  c.name, c.data_dir, c.image_size, c.batch_size = "demo", data_dir, 32, 8
  c.update(kw)
  return c


def test_pipeline_shapes_ranges_and_resumption(data_dir):
  mesh = sharding.make_mesh()
  config = _data_config(data_dir, mask_bucket="40-60")
  stream = input_pipeline.create_iterator(config, mesh, split="train", seed=5)
  batches = [next(stream) for _ in range(4)]
  b = batches[3]
  assert b["image"].shape == (8, 32, 32, 3) and b["image"].dtype == np.float32
  assert b["mask"].shape == (8, 32, 32, 1)
  assert 0.0 <= float(b["image"].min()) and float(b["image"].max()) <= 1.0
  ratios = np.asarray(b["mask"]).mean(axis=(1, 2, 3))
  assert np.all((ratios >= 0.4) & (ratios <= 0.6))
  resumed = next(input_pipeline.create_iterator(config, mesh, split="train", seed=5,
                                                start_step=3))
  np.testing.assert_array_equal(resumed["image"], b["image"])
  np.testing.assert_array_equal(resumed["mask"], b["mask"])
  other = next(input_pipeline.create_iterator(config, mesh, split="train", seed=6, start_step=3))
  assert not np.array_equal(other["image"], b["image"])


def test_eval_pass_is_fixed_and_padded(data_dir):
  mesh = sharding.make_mesh()
  config = _data_config(data_dir, batch_size=48)
  first = list(input_pipeline.create_iterator(config, mesh, split="test", seed=0, train=False))
  again = list(input_pipeline.create_iterator(config, mesh, split="test", seed=0, train=False))
  n = len(datasets.load("demo", "test", data_dir=data_dir))
  assert sum(float(b["valid"].sum()) for b in first) == n
  assert len(first) == -(-n // 48)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a["mask"], b["mask"])
    np.testing.assert_array_equal(a["image"], b["image"])


def test_sharded_batch_equals_unsharded(data_dir):
  script = (
      "import json, sys, numpy as np\n"
      "from flowfill_jax import input_pipeline, sharding\n"
      "from flowfill_jax.config_base import base_config\n"
      "c = base_config().data\n"
      f"c.name, c.data_dir, c.image_size, c.batch_size = 'demo', {data_dir!r}, 32, 8\n"
      "out = {}\n"
      "for n in (1, 8):\n"
      "  b = next(input_pipeline.create_iterator(c, sharding.make_mesh(n), split='train', seed=1))\n"
      "  out[n] = (len(b['image'].sharding.device_set), np.asarray(b['image']).tolist(),\n"
      "            np.asarray(b['mask']).tolist())\n"
      "print(json.dumps([out[1][0], out[8][0], out[1][1] == out[8][1], out[1][2] == out[8][2]]))\n")
  env = dict(os.environ, XLA_FLAGS=xla_flags("--xla_force_host_platform_device_count=8"),
             JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads(result.stdout.strip().splitlines()[-1]) == [1, 8, True, True]


def test_worker_processes_make_the_same_batches(data_dir):
  """Examples made in spawned worker processes (with prefetch) equal the in-process ones."""
  mesh = sharding.make_mesh()
  batches = {}
  for workers in (0, 2):
    config = _data_config(data_dir, num_workers=workers)
    stream = input_pipeline.create_iterator(config, mesh, split="train", seed=3, start_step=2)
    batches[workers] = [next(stream) for _ in range(3)]
    stream.close()
  for a, b in zip(batches[0], batches[2]):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["mask"], b["mask"])
