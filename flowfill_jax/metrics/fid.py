"""FID and KID from Inception pool features, in float64 numpy.

The linear algebra runs on the host in float64: a 2048² covariance in float32 loses the
small eigenvalues that the trace of the matrix square root depends on.
"""

import numpy as np
import scipy.linalg


class FeatureStats:
  """Running float64 sums of features and their outer products, so a large set can stream.

  `keep_features=True` also keeps the rows themselves (KID needs them, FID does not).
  """

  def __init__(self, dim: int = 2048, keep_features: bool = False):
    self.n = 0
    self.sum = np.zeros(dim, np.float64)
    self.sum_outer = np.zeros((dim, dim), np.float64)
    self._kept = [] if keep_features else None

  def update(self, features: np.ndarray) -> "FeatureStats":
    f = np.asarray(features, np.float64).reshape(-1, self.sum.shape[0])
    self.n += f.shape[0]
    self.sum += f.sum(axis=0)
    self.sum_outer += f.T @ f
    if self._kept is not None:
      self._kept.append(np.asarray(features, np.float32).reshape(f.shape))
    return self

  @classmethod
  def from_features(cls, features: np.ndarray, keep_features: bool = False) -> "FeatureStats":
    features = np.asarray(features)
    return cls(features.shape[-1], keep_features).update(features)

  @property
  def mean(self) -> np.ndarray:
    return self.sum / self.n

  @property
  def cov(self) -> np.ndarray:
    """Unbiased covariance, as np.cov(features, rowvar=False) (what pytorch-fid uses)."""
    if self.n < 2:
      raise ValueError(f"a covariance needs at least 2 features, have {self.n}")
    mu = self.mean
    return (self.sum_outer - self.n * np.outer(mu, mu)) / (self.n - 1)

  @property
  def features(self) -> np.ndarray:
    if self._kept is None:
      raise ValueError("features were not kept: make the FeatureStats with keep_features=True")
    return np.concatenate(self._kept) if self._kept else np.zeros((0, self.sum.shape[0]), np.float32)


def _psd_factor(m: np.ndarray) -> np.ndarray:
  """F with m = F Fᵀ, [d, rank], by LAPACK's pivoted Cholesky (rank-revealing).

  It stops at the numerical rank (tolerance d·eps·max diag), so a covariance of fewer
  features than dimensions costs O(d² · rank) and its ~1e-16 noise directions are dropped:
  their square roots would otherwise add up over 2048 dims (a set's FID with itself came
  out at ~1e-4 instead of 0). Full rank costs ~20× less than an eigendecomposition.
  """
  # scipy's stubs do not list the generated LAPACK wrappers.
  c, piv, rank, info = scipy.linalg.lapack.dpstrf(m, lower=1)  # pyright: ignore[reportAttributeAccessIssue]
  if info < 0:
    raise ValueError(f"pivoted Cholesky failed (LAPACK info {info})")
  factor = np.empty((m.shape[0], rank))
  factor[piv - 1] = np.tril(c)[:, :rank]
  return factor


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  """tr(sqrt(sigma1 · sigma2)) as the sum of sqrt-eigenvalues of Fᵀ sigma2 F, sigma1 = F Fᵀ.

  Fᵀ s2 F is symmetric PSD and has the nonzero eigenvalues of s1 s2, so this is exact, stays
  real where scipy.linalg.sqrtm of the non-symmetric product can go complex, and is only
  rank×rank when few features made sigma1.
  """
  f = _psd_factor(np.asarray(sigma1, np.float64))
  m = f.T @ np.asarray(sigma2, np.float64) @ f
  w = np.linalg.eigvalsh((m + m.T) / 2)
  return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """||mu1 − mu2||² + tr(s1) + tr(s2) − 2 tr(sqrt(s1 s2)): the FID of two Gaussians."""
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
               - 2.0 * trace_sqrt_product(sigma1, sigma2))


def fid(stats_a: FeatureStats, stats_b: FeatureStats) -> float:
  return frechet_distance(stats_a.mean, stats_a.cov, stats_b.mean, stats_b.cov)


def polynomial_mmd(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD² with the cubic kernel k(a, b) = (a·b / d + 1)³ (KID paper, torch-fidelity)."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  d = x.shape[1]
  m = x.shape[0]
  kxx = (x @ x.T / d + 1.0) ** 3
  kyy = (y @ y.T / d + 1.0) ** 3
  kxy = (x @ y.T / d + 1.0) ** 3
  off_diagonal = kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)
  return float(off_diagonal / (m * (m - 1)) - 2.0 * kxy.sum() / (m * y.shape[0]))


def kid(features_a: np.ndarray, features_b: np.ndarray, num_subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """KID: mean and std of the polynomial MMD² over random equal-size subsets.

  As torch-fidelity: subsets drawn without replacement, one seeded generator for the run;
  `subset_size` is cut to the smaller set's size when the sets are small.
  """
  features_a, features_b = np.asarray(features_a), np.asarray(features_b)
  m = min(subset_size, len(features_a), len(features_b))
  if m < 2:
    raise ValueError(f"KID needs at least 2 features in each set, have {m}")
  rng = np.random.RandomState(seed)
  mmds = []
  for _ in range(num_subsets):
    x = features_a[rng.choice(len(features_a), m, replace=False)]
    y = features_b[rng.choice(len(features_b), m, replace=False)]
    mmds.append(polynomial_mmd(x, y))
  return float(np.mean(mmds)), float(np.std(mmds))
