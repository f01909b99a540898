"""Image-quality metrics: pure functions in :mod:`isplab.metrics.functional`, chosen by name
through :func:`create_metric` / :func:`list_metrics`. Protocols: ``docs/metrics.md``.

LPIPS lives in :mod:`isplab.metrics.lpips` (needs backbone weights; not imported here).
"""

from isplab.metrics.functional import (
    angular_error,
    ciede2000,
    deltae2000,
    deltae2000_map,
    ms_ssim,
    psnr,
    psnr_y,
    rgb_to_y_bt601,
    ssim,
)
from isplab.metrics.registry import Metric, aggregate, create_metric, list_metrics

__all__ = [
    "Metric",
    "aggregate",
    "angular_error",
    "ciede2000",
    "create_metric",
    "deltae2000",
    "deltae2000_map",
    "list_metrics",
    "ms_ssim",
    "psnr",
    "psnr_y",
    "rgb_to_y_bt601",
    "ssim",
]
