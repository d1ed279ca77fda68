"""Evaluation metrics (paper §4): PSNR, SSIM, mean ℓ1, FID/KID, LPIPS diversity.

Per-image metrics return [B] so evaluation can bucket by hole ratio; FID and KID take
Inception features (streamed through `FeatureStats`). Network weights load from local files
shipped by pip packages (no download at run time, no torch import). The functions named like
their modules stay in them, `fid.fid(stats_a, stats_b)` and `lpips.lpips(a, b)`, so that the
submodules are not shadowed.
"""

from flowfill_jax.metrics import fid, image, inception, lpips
from flowfill_jax.metrics.fid import FeatureStats, frechet_distance, kid
from flowfill_jax.metrics.image import l1_percent, psnr, ssim
from flowfill_jax.metrics.inception import FIDInception, load_inception
from flowfill_jax.metrics.lpips import diversity, load_lpips, sample_pairs

__all__ = [
    "FIDInception", "FeatureStats", "diversity", "fid", "frechet_distance", "image", "inception",
    "kid", "l1_percent", "load_inception", "load_lpips", "lpips", "psnr", "sample_pairs", "ssim",
]
