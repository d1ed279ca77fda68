"""Inference on the tiny trained run: API, CLI, exactness, seeds, transfer, ranking, bad input."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import box_masks, real_crops
from PIL import Image

from flowfill_jax import image_ops, resize, visualize
from flowfill_jax.errors import UserError
from flowfill_jax.image_io import read_image, read_mask
from flowfill_jax.inference import Inpainter


@pytest.fixture(scope="module")
def model(trained_run):
  return Inpainter.from_workdir(trained_run[0])


@pytest.fixture(scope="module")
def photo():
  image = real_crops(1, 48, seed=3)[0]
  mask = box_masks(1, 48, seed=3)[0, ..., 0]
  return image, mask


def test_inpaint_keeps_known_pixels_and_follows_seeds(model, photo):
  image, mask = photo  # 48² while the model is 32²: resized there and back
  a, log_prob = model.inpaint(image, mask, num=3, seed=1, return_log_prob=True)
  assert a.shape == (3, 48, 48, 3) and log_prob.shape == (3,)
  known = mask < 0.5
  assert np.array_equal(a[:, known], np.broadcast_to(image[known], (3,) + image[known].shape))
  np.testing.assert_array_equal(a, model.inpaint(image, mask, num=3, seed=1))
  b = model.inpaint(image, mask, num=3, seed=2)
  assert np.abs(a - b)[:, ~known].max() > 1e-4
  assert np.abs(a[0] - a[1])[~known].max() > 1e-4  # samples of one call differ too


def test_uint8_images_read_by_their_range_and_what_is_under_the_hole_is_ignored(model, photo):
  image, mask = photo
  image8 = np.round(image * 255).astype(np.uint8)
  scaled = image8.astype(np.float32) / 255
  a = model.inpaint(scaled, mask, num=2, seed=1)
  np.testing.assert_array_equal(model.inpaint(image8, mask, num=2, seed=1), a)
  hole = mask[..., None] > 0.5
  np.testing.assert_array_equal(model.inpaint(np.where(hole, np.nan, scaled), mask, num=2, seed=1), a)
  np.testing.assert_array_equal(model.inpaint(np.where(hole, 0.0, scaled), mask, num=2, seed=1), a)


@pytest.mark.parametrize("spoil, message", [
    (lambda x: x * 255, r"values span \[.*\]: expected floats in \[0, 1\]"),
    (lambda x: np.where(np.arange(x.shape[1])[None, :, None] == 0, np.nan, x), "NaN or infinite"),
    (lambda x: np.round(x * 255).astype(np.int64), "dtype int64"),
])
def test_api_refuses_pixels_it_would_misread(model, photo, spoil, message):
  image, mask = photo
  mask = mask.copy()
  mask[:, 0] = 0  # the spoiled first column is known
  with pytest.raises(UserError, match=message):
    model.inpaint(spoil(image), mask, num=1)


def test_transfer_onto_itself_reproduces_its_prior(model, photo):
  image, mask = photo
  z = model.latents(image, mask)
  prior = model.prior_from_latents(z, image, mask)
  # The target's prior as training sees it: resized to the model, area-averaged, mid-bin.
  low = image_ops.area_downsample(resize.image(image, 32)[None], 8)
  truth = np.asarray(image_ops.dequantize(low, model.structure.n_bits, None)) + 0.5
  np.testing.assert_allclose(prior, truth, atol=1e-4)
  out = model.transfer(image, image, mask)
  assert out.shape == image.shape
  np.testing.assert_array_equal(out[mask < 0.5], image[mask < 0.5])


def test_log_prob_is_exact_density_of_samples(model, photo):
  """The log-likelihood returned with each sample is `log_prob` of that sample's prior."""
  image, mask = photo
  masked, m = model._to_model(image, mask)
  _, priors, log_prob = model.two_stage.sample_completions(
      model.structure_vars, model.generator_params, masked, m, jax.random.key(5), num=3,
      temperature=0.8)
  expected = model.log_prob(np.asarray(priors[0]), np.repeat(image[None], 3, 0),
                            np.repeat(mask[None], 3, 0))
  np.testing.assert_allclose(np.asarray(log_prob[0]), expected, rtol=1e-4)
  _, inpaint_log_prob = model.inpaint(image, mask, num=3, seed=5, return_log_prob=True)
  np.testing.assert_allclose(inpaint_log_prob, np.asarray(log_prob[0]), rtol=1e-5)
  bpd = model.bits_per_dim(np.full((8, 8, 3), 0.5, np.float32), image, mask)
  assert bpd.shape == (1,) and np.isfinite(bpd).all()


def _write_inputs(tmp_path, photo):
  image, mask = photo
  visualize.write_png(str(tmp_path / "img.png"), image)
  visualize.write_png(str(tmp_path / "mask.png"), mask[..., None])
  return str(tmp_path / "img.png"), str(tmp_path / "mask.png")


def _sample(workdir, *args):
  return subprocess.run([sys.executable, "-m", "flowfill_jax.sample", f"--workdir={workdir}",
                         *args], capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))


def test_cli_writes_ranked_samples_and_grid(trained_run, tmp_path, photo):
  img, mask = _write_inputs(tmp_path, photo)
  run = lambda out: _sample(trained_run[0], f"--image={img}", f"--mask={mask}",
                            f"--out={out}", "--num=4", "--seed=7", "--rank")
  first = run(tmp_path / "a")
  assert first.returncode == 0, first.stderr[-2000:]
  samples = [f"sample_{i:02d}.png" for i in range(4)]
  assert sorted(os.listdir(tmp_path / "a")) == sorted(["grid.png", "samples.json", *samples])
  assert Image.open(tmp_path / "a" / "sample_00.png").size == (48, 48)
  log_probs = [s["log_prob_nats"] for s in json.load(open(tmp_path / "a" / "samples.json"))["samples"]]
  assert log_probs == sorted(log_probs, reverse=True)
  # Ranked by the exact density: the same figures the API gives for seed 7, sorted.
  model = Inpainter.from_workdir(trained_run[0])
  _, api = model.inpaint(read_image(img), read_mask(mask), num=4, seed=7, return_log_prob=True)
  np.testing.assert_allclose(log_probs, np.sort(api)[::-1], rtol=1e-4)
  assert run(tmp_path / "b").returncode == 0
  for name in samples:  # same seed, same files
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_cli_bad_inputs(trained_run, tmp_path, photo):
  img, mask = _write_inputs(tmp_path, photo)
  (tmp_path / "corrupt.png").write_bytes(b"not a png")
  visualize.write_png(str(tmp_path / "small.png"), np.zeros((20, 20, 1)))
  visualize.write_png(str(tmp_path / "empty.png"), np.zeros((48, 48, 1)))
  visualize.write_png(str(tmp_path / "full.png"), np.ones((48, 48, 1)))
  empty_run = tmp_path / "empty_run"
  empty_run.mkdir()
  shutil.copy(os.path.join(trained_run[0], "config.json"), empty_run / "config.json")
  cases = [
      ([f"--image={tmp_path}/missing.png", f"--mask={mask}"], "does not exist"),
      ([f"--image={tmp_path}/corrupt.png", f"--mask={mask}"], "not a readable image"),
      ([f"--image={img}", f"--mask={tmp_path}/corrupt.png"], "cannot read mask"),
      ([f"--image={img}", f"--mask={tmp_path}/small.png"], "same size"),
      ([f"--image={img}", f"--mask={tmp_path}/empty.png"], "nothing to fill"),
      ([f"--image={img}", f"--mask={tmp_path}/full.png"], "whole image"),
      ([f"--image={img}", f"--mask={mask}", "--num=0"], "--num must be at least 1"),
      ([f"--image={img}", f"--mask={mask}", "--num=-3"], "--num must be at least 1"),
      ([f"--image={img}", f"--mask={mask}", "--temperature=nan"], "--temperature must be"),
      ([f"--image={img}", f"--mask={mask}", "--temperature=-1"], "--temperature must be"),
  ]
  for args, message in cases:
    out = tmp_path / "out"
    result = _sample(trained_run[0], *args, f"--out={out}")
    assert result.returncode == 2, (args, result.stderr[-1000:])
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
  (tmp_path / "a_file").write_text("")
  result = _sample(trained_run[0], f"--image={img}", f"--mask={mask}",
                   f"--out={tmp_path}/a_file/out")
  assert result.returncode == 2 and "is not a folder" in result.stderr
  assert "Traceback" not in result.stderr
  result = _sample(str(empty_run), f"--image={img}", f"--mask={mask}", f"--out={tmp_path}/o")
  assert result.returncode == 2 and "holds no checkpoint" in result.stderr
  assert os.listdir(empty_run) == ["config.json"]  # reading created no checkpoint folders


def test_checkpoint_of_another_model_is_refused(trained_run, tmp_path):
  run = tmp_path / "run"
  shutil.copytree(trained_run[0], run)
  config = json.load(open(run / "config.json"))
  config["model"]["structure"]["hidden"] = 12  # same fields, other shapes
  json.dump(config, open(run / "config.json", "w"))
  with pytest.raises(UserError, match="do not match"):
    Inpainter.from_workdir(str(run))
  config["model"]["structure"]["unknown_field"] = 1
  json.dump(config, open(run / "config.json", "w"))
  with pytest.raises(UserError, match="does not match this code"):
    Inpainter.from_workdir(str(run))


def test_cli_batch_mode_over_a_folder(trained_run, tmp_path):
  folder = tmp_path / "images"
  folder.mkdir()
  for i, image in enumerate(real_crops(3, 40, seed=9)):
    visualize.write_png(str(folder / f"im{i}.png"), image)
  result = _sample(trained_run[0], f"--input-dir={folder}", f"--out={tmp_path}/out",
                   "--mask-bucket=40-60", "--num=2", "--batch-size=2")
  assert result.returncode == 0, result.stderr[-2000:]
  files = sorted(os.listdir(tmp_path / "out"))
  assert files == sorted([f"im{i}_s{k}.png" for i in range(3) for k in range(2)] +
                         [f"im{i}_mask.png" for i in range(3)])
  mask = np.asarray(Image.open(tmp_path / "out" / "im0_mask.png")) > 127
  assert 0.4 <= mask.mean() <= 0.6 and mask.shape == (32, 32)
  assert "images/s" in result.stdout


def test_serving_code_imports_no_training_module():
  """`Inpainter` builds its models through `factory` and restores only E + f and G."""
  code = ("import sys\nimport flowfill_jax.inference\n"
          "loaded = [m for m in ('flowfill_jax.structure_stage', 'flowfill_jax.texture_stage', "
          "'flowfill_jax.train', 'optax') if m in sys.modules]\n"
          "assert not loaded, loaded\n")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_exported_model_samples_as_its_run_does(trained_run, model, photo, tmp_path):
  """Export keeps E, f and G (float16 parameters): same samples to rounding, same densities."""
  from flowfill_jax import export
  out = str(tmp_path / "exported")
  export.export(trained_run[0], out, examples=2)
  assert sorted(os.listdir(out)) == ["config.json", "examples", "weights.msgpack"]
  assert len(os.listdir(os.path.join(out, "examples"))) == 2
  exported = Inpainter.from_workdir(out)
  assert exported.checkpoint_steps == model.checkpoint_steps
  image, mask = photo
  a, log_a = model.inpaint(image, mask, num=3, seed=4, return_log_prob=True)
  b, log_b = exported.inpaint(image, mask, num=3, seed=4, return_log_prob=True)
  np.testing.assert_allclose(b, a, atol=2e-2)
  np.testing.assert_allclose(log_b, log_a, rtol=2e-3)
  assert np.array_equal(b[:, mask < 0.5], a[:, mask < 0.5])
  (tmp_path / "broken").mkdir()
  shutil.copy(os.path.join(out, "config.json"), tmp_path / "broken")
  (tmp_path / "broken" / "weights.msgpack").write_bytes(b"\x00not msgpack")
  with pytest.raises(UserError, match="cannot read the model weights .*weights.msgpack"):
    Inpainter.from_workdir(str(tmp_path / "broken"))
  other = tmp_path / "other"  # weights of one model beside the config of another
  shutil.copytree(out, other)
  config = json.load(open(other / "config.json"))
  config["model"]["texture"]["base_features"] *= 2
  (other / "config.json").write_text(json.dumps(config))
  with pytest.raises(UserError, match="generator weights .* do not match the model"):
    Inpainter.from_workdir(str(other))


def test_sample_cli_without_workdir_uses_the_shipped_model(tmp_path):
  """The package ships a model: sampling works right after install, no run needed."""
  image = real_crops(1, 80, seed=5)[0]
  mask = np.zeros((80, 80), np.float32)
  mask[20:50, 30:60] = 1
  visualize.write_png(str(tmp_path / "img.png"), image)
  visualize.write_png(str(tmp_path / "mask.png"), mask[..., None])
  result = subprocess.run(
      [sys.executable, "-m", "flowfill_jax.sample", f"--image={tmp_path / 'img.png'}",
       f"--mask={tmp_path / 'mask.png'}", f"--out={tmp_path / 'out'}", "--num=2"],
      capture_output=True, text=True, timeout=600, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-2000:]
  for k in range(2):
    sample = read_image(str(tmp_path / "out" / f"sample_{k:02d}.png"))
    assert sample.shape == (80, 80, 3)
    np.testing.assert_allclose(sample[mask < 0.5], image[mask < 0.5], atol=1 / 255)


def test_a_run_saved_with_the_old_field_names_loads_as_it_was_trained(tmp_path):
  """A config saved under the old names (`model.smooth_fill`, `structure.temperature`,
  `texture.paste_known_prior`, …) loads with its values under the new ones; one saved before
  the fill's method was a field keeps the harmonic fill it was trained with, and one saved
  before G's training noise had its own τ keeps the sampling τ it was trained with."""
  from flowfill_jax.config_base import base_config
  from flowfill_jax.inference import load_config
  from flowfill_jax.legacy import RENAMED_FIELDS
  saved = base_config().to_dict()
  values = {"model.smooth_fill_method": "biharmonic", "sample.temperature": 0.37,
            "model.texture.paste_known_prior": True, "texture.gan_loss": "hinge",
            "model.structure.hole_base": "smooth", "model.texture.smooth_fill_detail": True}
  for old, new in RENAMED_FIELDS.items():
    *new_sections, new_field = new.split(".")
    node = saved
    for section in new_sections:
      node = node[section]
    del node[new_field]
    *old_sections, old_field = old.split(".")
    node = saved
    for section in old_sections:
      node = node.setdefault(section, {})
    node[old_field] = values[new]
  del saved["texture"]["prior_noise_temperature"]  # G's training noise was sampling's τ
  (tmp_path / "config.json").write_text(json.dumps(saved, default=list))
  loaded = load_config(str(tmp_path))
  for new, value in values.items():
    node = loaded
    for part in new.split("."):
      node = node[part]
    assert node == value, new
  assert loaded.texture.prior_noise_temperature == 0.37
  del saved["model"]["smooth_fill"]
  (tmp_path / "config.json").write_text(json.dumps(saved, default=list))
  assert load_config(str(tmp_path)).model.smooth_fill_method == "harmonic"


def test_samples_json_marks_out_of_range_priors_without_a_figure():
  """A prior outside the data range has log-prob -inf: no number that JSON cannot hold, and
  counted apart from the samples that have a density; a transfer has no figure at all."""
  from flowfill_jax.sample import sample_records
  records = sample_records(np.array([-1.5, -np.inf, np.nan], np.float32))
  assert [r["file"] for r in records] == ["sample_00.png", "sample_01.png", "sample_02.png"]
  assert [r["in_range"] for r in records] == [True, False, True]
  assert [r["log_prob_nats"] for r in records] == [-1.5, None, None]
  json.dumps(records, allow_nan=False)


def test_batch_mode_names_a_broken_file_before_loading_the_model(tmp_path):
  from flowfill_jax.sample import run_folder
  folder = tmp_path / "images"
  folder.mkdir()
  for i, image in enumerate(real_crops(2, 40, seed=9)):
    visualize.write_png(str(folder / f"im{i}.png"), image)
  (folder / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
  # No model exists at this workdir: the broken file must be found first, nothing written.
  with pytest.raises(UserError, match=r"zz_broken\.png: not a readable image"):
    run_folder(str(tmp_path / "no_run"), str(folder), str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()


def test_without_a_mask_the_transparent_pixels_are_the_hole(trained_run, tmp_path, photo):
  from flowfill_jax.sample import Sampling, run
  image, mask = photo
  rgba = np.dstack([np.round(image * 255), np.where(mask > 0.5, 0, 255)]).astype(np.uint8)
  Image.fromarray(rgba).save(tmp_path / "erased.png")
  summary = run(trained_run[0], str(tmp_path / "erased.png"), None, str(tmp_path / "out"),
                Sampling(num=2, seed=5))
  assert summary["mask"] == "the image's transparent pixels"
  from_alpha = np.stack([read_image(str(tmp_path / "out" / f"sample_0{i}.png")) for i in range(2)])
  visualize.write_png(str(tmp_path / "photo.png"), image)
  visualize.write_png(str(tmp_path / "mask.png"), mask)
  run(trained_run[0], str(tmp_path / "photo.png"), str(tmp_path / "mask.png"),
      str(tmp_path / "out2"), Sampling(num=2, seed=5))
  from_mask = np.stack([read_image(str(tmp_path / "out2" / f"sample_0{i}.png")) for i in range(2)])
  np.testing.assert_array_equal(from_alpha, from_mask)
  with pytest.raises(UserError, match="no --mask given and image .*photo.png has no transparency"):
    run(trained_run[0], str(tmp_path / "photo.png"), None, str(tmp_path / "out3"))
  assert not (tmp_path / "out3").exists()
