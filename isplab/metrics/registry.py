"""Metrics chosen by name: ``create_metric("ssim", border=4)``, ``list_metrics()``.

A :class:`Metric` is a ``torch.nn.Module`` around one function of
:mod:`isplab.metrics.functional` with its options bound. It declares what it is and what it
expects (``name``, ``higher_is_better``, ``input_shape``, ``colour_space``, ``data_range``),
returns one value per image (a tensor of N) and aggregates a set of per-image values into
plain floats (:meth:`Metric.aggregate`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from isplab.errors import InvalidInputError
from isplab.metrics import functional as MF
from isplab.registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    """What the registry knows of a metric: its function, direction and input contract."""

    name: str
    fn: Callable[..., torch.Tensor]
    higher_is_better: bool
    description: str
    defaults: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    input_shape: str = "N x 3 x H x W"
    colour_space: str = "srgb"


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add a metric to the registry (names are unique)."""
    if spec.name in METRICS:
        raise ValueError(f"metric {spec.name!r} is already registered")
    return METRICS.add(spec.name, spec, description=spec.description)


def metric_spec(name: str) -> MetricSpec:
    """What the registry knows of ``name`` (direction, defaults, description)."""
    return METRICS.get(name)


def list_metrics() -> list[str]:
    """Names of the registered metrics, sorted."""
    return METRICS.names()


def aggregate(values: torch.Tensor | Sequence[float]) -> dict[str, float]:
    """Mean and median of per-image values as plain Python floats.

    ``+inf`` values (PSNR of identical images) are kept: the mean is then ``inf`` (never NaN:
    no metric here returns ``-inf`` or NaN), the median is ``inf`` only if at least half the
    values are. The median of an even count is the mean of the two middle values (as NumPy).
    Note ``json.dumps`` writes ``inf`` as ``Infinity``.
    """
    v = torch.as_tensor(values, dtype=torch.float64).detach().cpu().flatten()
    if v.numel() == 0:
        raise InvalidInputError("aggregate needs at least one value")
    if torch.isnan(v).any():
        raise InvalidInputError("aggregate got NaN values")
    s, _ = torch.sort(v)
    k = s.numel()
    median = s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) / 2
    if torch.isinf(s).any():
        lo, hi = bool(torch.isneginf(s).any()), bool(torch.isposinf(s).any())
        mean = math.nan if lo and hi else (math.inf if hi else -math.inf)
    else:
        mean = float(s.mean())
    return {"mean": float(mean), "median": float(median)}


class Metric(nn.Module):
    """A registered metric with its options bound; ``metric(x, y)`` -> tensor of N values.

    Attributes:
        name: registry name.
        higher_is_better: direction of the metric.
        input_shape: expected input shape, e.g. ``"N x 3 x H x W"``.
        colour_space: colour space of the inputs (``"srgb"``; ``"rgb"`` for illuminants).
        data_range: peak value the inputs are expected in (None where not applicable).
        options: the bound keyword options (e.g. ``border``).
    """

    def __init__(self, spec: MetricSpec, options: dict):
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.higher_is_better = spec.higher_is_better
        self.input_shape = spec.input_shape
        self.colour_space = spec.colour_space
        self.options = dict(options)
        self.data_range = self.options.get("data_range")  # None: the metric takes none

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image values (tensor of N); ``x`` the result, ``y`` the reference."""
        if self.input_shape == "N x 3 x H x W":
            MF.check_pair(x, y, channels=3)
        return self.spec.fn(x, y, **self.options, **self.spec.fixed)

    @staticmethod
    def aggregate(values: torch.Tensor | Sequence[float]) -> dict[str, float]:
        """``{"mean", "median"}`` of per-image values as floats (see :func:`aggregate`)."""
        return aggregate(values)

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"name={self.name!r}, higher_is_better={self.higher_is_better}, {opts}"


def create_metric(name: str, **opts) -> Metric:
    """The metric ``name`` with options ``opts`` (``border``, ``data_range`` where it applies).

    Raises:
        InvalidInputError: unknown name or option.
    """
    spec = METRICS.get(name)
    unknown = set(opts) - set(spec.defaults)
    if unknown:
        raise InvalidInputError(
            f"metric {name!r} has no option(s) {', '.join(sorted(unknown))}; "
            f"options: {', '.join(sorted(spec.defaults)) or 'none'}"
        )
    options = {**spec.defaults, **opts}
    if "border" in options:
        MF.check_border(options["border"])
    if "data_range" in options:
        MF._check_data_range(options["data_range"])
    return Metric(spec, options)


_IMAGE = {"data_range": 1.0, "border": 0}

register_metric(MetricSpec(
    "psnr", MF.psnr, True, "PSNR in dB over all RGB channels", dict(_IMAGE)))
register_metric(MetricSpec(
    "psnr_y", MF.psnr_y, True, "PSNR in dB on BT.601 luma Y", dict(_IMAGE)))
register_metric(MetricSpec(
    "ssim", MF.ssim, True, "SSIM, Gaussian 11x11 sigma 1.5, mean over channels", dict(_IMAGE)))
register_metric(MetricSpec(
    "ms_ssim", MF.ms_ssim, True, "MS-SSIM, 5 scales, mean over channels", dict(_IMAGE)))
register_metric(MetricSpec(
    "deltae2000", MF.deltae2000, False, "mean CIEDE2000 over pixels (sRGB -> Lab D65)",
    {"border": 0}, {"reduction": "mean"}))
register_metric(MetricSpec(
    "deltae2000_p95", MF.deltae2000, False, "95th percentile of CIEDE2000 over pixels",
    {"border": 0}, {"reduction": "p95"}))
register_metric(MetricSpec(
    "angular_error", MF.angular_error, False,
    "angle in degrees between illuminant RGB vectors", {}, {},
    input_shape="N x 3", colour_space="rgb"))


@functools.lru_cache(maxsize=4)
def _lpips_module(net: str, weights: str | None):
    from isplab.metrics.lpips import LPIPS  # loads backbone weights: only when asked for

    return LPIPS(net, weights=weights)


def _lpips(x: torch.Tensor, y: torch.Tensor, net: str, weights=None, border: int = 0):
    x, y = MF.crop_border(x, border), MF.crop_border(y, border)
    model = _lpips_module(net, None if weights is None else str(weights))
    return model.to(x.device)(x, y)


for _net, _backbone in (("alex", "AlexNet"), ("vgg", "VGG-16")):
    register_metric(MetricSpec(
        f"lpips_{_net}", _lpips, False,
        f"LPIPS v0.1 with {_backbone} (backbone weights from torchvision's file: "
        "weights=PATH or $ISPLAB_WEIGHTS_DIR)",
        {"border": 0, "weights": None}, {"net": _net}))
