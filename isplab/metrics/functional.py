"""Image-quality metrics as pure functions (one definition, used by train and evaluate).

Every function takes a pair of ``N x C x H x W`` floating tensors of the same shape and returns
one value per image, a tensor of shape ``N`` (no reduction over the batch: aggregate with
:func:`isplab.metrics.registry.aggregate`). The full protocol of each metric, constants included,
is in ``docs/metrics.md``.

- :func:`psnr`, :func:`psnr_y`: peak signal-to-noise ratio over all channels / on BT.601 luma.
  Identical images give ``+inf`` (explicitly, not via a division by zero).
- :func:`ssim`: Gaussian-window SSIM (11 taps, sigma 1.5, K1 0.01, K2 0.03), per channel then
  averaged; matches ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False)``.
- :func:`ms_ssim`: 5-scale MS-SSIM (Wang et al. 2003), matches ``pytorch_msssim.ms_ssim``.
- :func:`ciede2000`: CIEDE2000 colour difference of CIELAB values (Sharma, Wu & Dalal 2005);
  :func:`deltae2000_map`, :func:`deltae2000` apply it to sRGB images.
- :func:`angular_error`: angle in degrees between illuminant RGB vectors (white balance).

Nothing here converts colour spaces implicitly: names say which space an input is in.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from isplab.errors import InvalidInputError

#: MS-SSIM scale weights (Wang, Simoncelli & Bovik 2003), finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: SSIM constants.
SSIM_WIN_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

#: BT.601 luma from sRGB in [0, 1] (super-resolution convention, as MATLAB's rgb2ycbcr):
#: Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255, in [16/255, 235/255].
BT601_Y_OFFSET = 16.0 / 255.0
BT601_Y_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


# --------------------------------------------------------------------------- checks


def check_pair(
    x: torch.Tensor,
    y: torch.Tensor,
    channels: int | None = None,
    names: tuple[str, str] = ("x", "y"),
) -> None:
    """Raise InvalidInputError unless ``x`` and ``y`` are finite floating N x C x H x W tensors
    of one shape (with ``C == channels`` when given)."""
    for t, name in zip((x, y), names, strict=True):
        if not isinstance(t, torch.Tensor):
            raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise InvalidInputError(
                f"{name} must be a 4-D tensor N x C x H x W, got shape {tuple(t.shape)}"
            )
        if channels is not None and t.shape[1] != channels:
            raise InvalidInputError(
                f"{name} must have shape N x {channels} x H x W, got {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise InvalidInputError(f"{name} must be floating point, got {t.dtype}")
    if x.shape != y.shape:
        raise InvalidInputError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    for t, name in zip((x, y), names, strict=True):
        if not torch.isfinite(t).all():
            bad = "NaN" if torch.isnan(t).any() else "infinite"
            raise InvalidInputError(f"{name} contains {bad} values")


def _check_data_range(data_range: float) -> float:
    if not (isinstance(data_range, int | float) and math.isfinite(data_range) and data_range > 0):
        raise InvalidInputError(f"data_range must be a finite number > 0, got {data_range!r}")
    return float(data_range)


def check_border(border: int) -> int:
    """Raise InvalidInputError unless ``border`` is an integer >= 0."""
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise InvalidInputError(f"border must be an integer >= 0, got {border!r}")
    return border


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """Remove ``border`` pixels on each side of an ``N x C x H x W`` tensor."""
    check_border(border)
    if border == 0:
        return x
    h, w = x.shape[-2:]
    if 2 * border >= min(h, w):
        raise InvalidInputError(
            f"border {border} removes the whole image of size {h} x {w}"
        )
    return x[..., border : h - border, border : w - border]


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not NaN/inf) gradient at 0 and 0 for v <= 0."""
    pos = v > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, v, torch.ones_like(v))), 0.0)


# --------------------------------------------------------------------------- PSNR


def _psnr_from_mse(mse: torch.Tensor, data_range: float) -> torch.Tensor:
    zero = mse == 0
    safe = torch.where(zero, torch.ones_like(mse), mse)
    value = 10.0 * torch.log10(data_range**2 / safe)
    return torch.where(zero, torch.full_like(mse, math.inf), value)


def psnr(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, border: int = 0
) -> torch.Tensor:
    """Peak signal-to-noise ratio over all channels, in dB, per image.

    ``PSNR = 10 log10(data_range^2 / MSE)`` with the MSE taken over all channels and pixels
    of each image (after removing ``border`` pixels on each side).

    Args:
        x, y: ``N x C x H x W`` floating tensors in ``[0, data_range]`` (any colour space; the
            registered metric ``psnr`` expects sRGB).
        data_range: the peak value (1 for data in [0, 1]).
        border: pixels removed on each side before computing.

    Returns:
        ``N`` values in dB; ``+inf`` where the images are identical (MSE = 0), with a zero
        gradient there.
    """
    check_pair(x, y)
    data_range = _check_data_range(data_range)
    x, y = crop_border(x, border), crop_border(y, border)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return _psnr_from_mse(mse, data_range)


def rgb_to_y_bt601(srgb: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """BT.601 luma of sRGB data as in the super-resolution convention (MATLAB ``rgb2ycbcr``).

    ``Y = data_range * 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in
    ``[0, data_range]`` (for ``data_range = 1`` this is the usual 8-bit Y divided by 255, so
    Y lies in ``[16/255, 235/255]``). Applied to the gamma-encoded sRGB values, not linear RGB.

    Args:
        srgb: ``N x 3 x H x W``.

    Returns:
        ``N x 1 x H x W``.
    """
    w = torch.tensor(BT601_Y_WEIGHTS, dtype=srgb.dtype, device=srgb.device)
    return (srgb * w[None, :, None, None]).sum(1, keepdim=True) + data_range * BT601_Y_OFFSET


def psnr_y(
    srgb_x: torch.Tensor, srgb_y: torch.Tensor, data_range: float = 1.0, border: int = 0
) -> torch.Tensor:
    """PSNR on the BT.601 luma (:func:`rgb_to_y_bt601`) of two sRGB images, in dB, per image.

    The usual super-resolution protocol (e.g. BasicSR's ``test_y_channel``), with
    ``data_range`` the peak of the RGB data; identical images give ``+inf``.

    Args:
        srgb_x, srgb_y: ``N x 3 x H x W`` sRGB in ``[0, data_range]``.
        data_range: peak value of the data.
        border: pixels removed on each side before computing.

    Returns:
        ``N`` values in dB.
    """
    check_pair(srgb_x, srgb_y, channels=3, names=("srgb_x", "srgb_y"))
    data_range = _check_data_range(data_range)
    yx = rgb_to_y_bt601(crop_border(srgb_x, border), data_range)
    yy = rgb_to_y_bt601(crop_border(srgb_y, border), data_range)
    mse = (yx - yy).pow(2).flatten(1).mean(1)
    return _psnr_from_mse(mse, data_range)


# --------------------------------------------------------------------------- SSIM


def gaussian_window_1d(
    size: int = SSIM_WIN_SIZE,
    sigma: float = SSIM_SIGMA,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Normalised 1-D Gaussian ``exp(-k^2 / (2 sigma^2))`` for k in ``-(size//2)..size//2``."""
    k = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(k**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _filter_valid(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter without padding ('valid'): output is smaller by size-1."""
    c = x.shape[1]
    k = win.shape[0]
    x = F.conv2d(x, win.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, win.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def _ssim_cs(
    x: torch.Tensor, y: torch.Tensor, data_range: float, win: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean SSIM and mean contrast-structure term, both ``N x C``.

    Statistics are Gaussian-weighted (population covariance) and evaluated only where the
    window lies inside the image, i.e. skimage's map cropped by (win_size - 1) // 2.
    """
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    n, c = x.shape[:2]
    stats = _filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), win)
    mx, my, mxx, myy, mxy = stats.split(c, dim=1)
    vx = mxx - mx * mx
    vy = myy - my * my
    vxy = mxy - mx * my
    cs_map = (2 * vxy + c2) / (vx + vy + c2)
    ssim_map = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def _check_ssim_size(h: int, w: int, what: str = "image") -> None:
    if min(h, w) < SSIM_WIN_SIZE:
        raise InvalidInputError(
            f"SSIM needs an {what} of at least {SSIM_WIN_SIZE} x {SSIM_WIN_SIZE} pixels "
            f"(after the border crop), got {h} x {w}"
        )


def ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, border: int = 0
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) with a Gaussian window, per image.

    Window 11 x 11, Gaussian sigma 1.5 (separable, normalised), K1 = 0.01, K2 = 0.03,
    population (co)variances; the SSIM map is averaged over the positions where the whole
    window lies inside the image (equivalently: skimage's map with its 'reflect' borders
    cropped by 5 pixels), per channel, then over channels.

    Args:
        x, y: ``N x C x H x W`` in ``[0, data_range]``, H and W >= 11 after the crop.
        data_range: peak value, sets C1 = (K1 data_range)^2, C2 = (K2 data_range)^2.
        border: pixels removed on each side before computing.

    Returns:
        ``N`` values in [-1, 1]; 1 for identical images.
    """
    check_pair(x, y)
    data_range = _check_data_range(data_range)
    x, y = crop_border(x, border), crop_border(y, border)
    _check_ssim_size(*x.shape[-2:])
    win = gaussian_window_1d(dtype=x.dtype, device=x.device)
    s, _ = _ssim_cs(x, y, data_range, win)
    return s.mean(1)


def ms_ssim_scales(h: int, w: int, max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """How many MS-SSIM scales an ``h x w`` image supports (coarsest side >= 11 pixels).

    Each scale halves the size rounding up (2 x 2 average pooling, odd sides padded), so
    5 scales need ``min(h, w) > 160``, as pytorch-msssim requires.
    """
    side = min(h, w)
    n = 0
    while n < max_scales and side >= SSIM_WIN_SIZE:
        n += 1
        side = (side + 1) // 2
    return n


def _ms_ssim_terms(
    x: torch.Tensor, y: torch.Tensor, data_range: float, scales: int
) -> torch.Tensor:
    """``scales x N x C`` tensor: cs at the finer scales, SSIM at the coarsest (not clamped)."""
    win = gaussian_window_1d(dtype=x.dtype, device=x.device)
    terms = []
    for i in range(scales):
        s, cs = _ssim_cs(x, y, data_range, win)
        if i < scales - 1:
            terms.append(cs)
            pad = [x.shape[-2] % 2, x.shape[-1] % 2]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
        else:
            terms.append(s)
    return torch.stack(terms)


def ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    border: int = 0,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003), per image, as pytorch-msssim.

    At each of 5 scales the SSIM statistics of :func:`ssim` are computed per channel; the
    contrast-structure terms of the 4 finer scales and the full SSIM of the coarsest are
    clamped at 0 (negative values would give NaN under a fractional power), raised to the
    weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) and multiplied; the result is averaged
    over channels. Between scales: 2 x 2 average pooling (odd sides zero-padded by one on
    each side, padding counted in the average, as ``F.avg_pool2d(..., padding=side % 2)``).

    Images too small for all scales (``min(H, W) <= 160``) use as many scales as have a
    coarsest side >= 11 pixels, with the first weights renormalised to sum to 1, and a
    warning. Fewer than 11 pixels: InvalidInputError.

    Args:
        x, y: ``N x C x H x W`` in ``[0, data_range]``.
        data_range: peak value.
        border: pixels removed on each side before computing.
        weights: per-scale exponents, finest first.

    Returns:
        ``N`` values in [0, 1]; 1 for identical images; never NaN (zero gradient through
        clamped terms).
    """
    check_pair(x, y)
    data_range = _check_data_range(data_range)
    x, y = crop_border(x, border), crop_border(y, border)
    h, w = x.shape[-2:]
    _check_ssim_size(h, w)
    scales = ms_ssim_scales(h, w, len(weights))
    wts = torch.tensor(weights[:scales], dtype=torch.float64)
    if scales < len(weights):
        warnings.warn(
            f"ms_ssim: a {h} x {w} image supports only {scales} of {len(weights)} scales "
            f"(5 need min(H, W) > 160); using {scales} with renormalised weights",
            stacklevel=2,
        )
        wts = wts / wts.sum()
    wts = wts.to(dtype=x.dtype, device=x.device)
    terms = _ms_ssim_terms(x, y, data_range, scales)
    pos = terms > 0
    safe = torch.where(pos, terms, torch.ones_like(terms))
    powered = torch.where(pos, safe ** wts[:, None, None], 0.0)
    return powered.prod(0).mean(1)


# --------------------------------------------------------------------------- CIEDE2000


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005), k_L = k_C = k_H = 1.

    Follows the paper's equations, with its conventions at the special points: hue h' = 0
    where a' = b' = 0; where C'1 C'2 = 0, delta h' = 0 and the mean hue is h'1 + h'2.
    Hue differences of exactly 180 degrees are ambiguous (the paper's pair 14) and decided
    by floating-point rounding, as in colour-science.

    Args:
        lab1, lab2: CIELAB values (L in [0, 100]) along dim 1 (size 3), any other dims, e.g.
            ``N x 3`` colours or ``N x 3 x H x W`` images. Broadcastable to one shape.

    Returns:
        The differences, shape of the inputs without dim 1. Differentiable except where a
        chroma is zero or a hue difference is exactly 180 degrees (there the gradient is
        finite but one-sided).
    """
    for t, name in ((lab1, "lab1"), (lab2, "lab2")):
        if not isinstance(t, torch.Tensor) or t.ndim < 2 or t.shape[1] != 3:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise InvalidInputError(f"{name} must have its L, a, b along dim 1, got {shape}")
    l1, a1, b1 = lab1.unbind(1)
    l2, a2, b2 = lab2.unbind(1)
    deg = 180.0 / math.pi
    rad = math.pi / 180.0

    c1 = _safe_sqrt(a1 * a1 + b1 * b1)
    c2 = _safe_sqrt(a2 * a2 + b2 * b2)
    cbar7 = ((c1 + c2) / 2) ** 7
    g = 0.5 * (1 - _safe_sqrt(cbar7 / (cbar7 + 25.0**7)))
    ap1 = (1 + g) * a1
    ap2 = (1 + g) * a2
    cp1 = _safe_sqrt(ap1 * ap1 + b1 * b1)
    cp2 = _safe_sqrt(ap2 * ap2 + b2 * b2)

    def hue(ap: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        zero = (ap == 0) & (b == 0)
        h = torch.atan2(torch.where(zero, torch.ones_like(b), b), ap) * deg
        return torch.where(zero, 0.0, torch.remainder(h, 360.0))

    hp1 = hue(ap1, b1)
    hp2 = hue(ap2, b2)

    dl = l2 - l1
    dc = cp2 - cp1
    cprod = cp1 * cp2
    nonzero = cprod != 0
    dh = hp2 - hp1
    dh = torch.where(dh > 180, dh - 360, torch.where(dh < -180, dh + 360, dh))
    dh = torch.where(nonzero, dh, 0.0)
    dH = 2 * _safe_sqrt(cprod) * torch.sin(dh * rad / 2)

    lbar = (l1 + l2) / 2
    cbarp = (cp1 + cp2) / 2
    hsum = hp1 + hp2
    far = (hp1 - hp2).abs() > 180
    hbar = torch.where(far, torch.where(hsum < 360, hsum + 360, hsum - 360), hsum) / 2
    hbar = torch.where(nonzero, hbar, hsum)

    t = (
        1
        - 0.17 * torch.cos((hbar - 30) * rad)
        + 0.24 * torch.cos(2 * hbar * rad)
        + 0.32 * torch.cos((3 * hbar + 6) * rad)
        - 0.20 * torch.cos((4 * hbar - 63) * rad)
    )
    dtheta = 30 * torch.exp(-(((hbar - 275) / 25) ** 2))
    cbarp7 = cbarp**7
    rc = 2 * _safe_sqrt(cbarp7 / (cbarp7 + 25.0**7))
    lbar50 = (lbar - 50) ** 2
    sl = 1 + 0.015 * lbar50 / torch.sqrt(20 + lbar50)
    sc = 1 + 0.045 * cbarp
    sh = 1 + 0.015 * cbarp * t
    rt = -torch.sin(2 * dtheta * rad) * rc

    tl, tc, th = dl / sl, dc / sc, dH / sh
    return _safe_sqrt(tl * tl + tc * tc + th * th + rt * tc * th)


def deltae2000_map(srgb_x: torch.Tensor, srgb_y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Per-pixel CIEDE2000 between two sRGB images.

    sRGB in [0, 1] -> CIELAB (D65, 2 degree observer) with ``kornia.color.rgb_to_lab``
    (sRGB transfer function, sRGB/BT.709 primaries, D65 white), then :func:`ciede2000`.

    Args:
        srgb_x, srgb_y: ``N x 3 x H x W`` sRGB in [0, 1].
        border: pixels removed on each side before computing.

    Returns:
        ``N x H' x W'`` colour differences (H' = H - 2 border).
    """
    from kornia.color import rgb_to_lab

    check_pair(srgb_x, srgb_y, channels=3, names=("srgb_x", "srgb_y"))
    x, y = crop_border(srgb_x, border), crop_border(srgb_y, border)
    return ciede2000(rgb_to_lab(x), rgb_to_lab(y))


def _quantile_linear(v: torch.Tensor, q: float) -> torch.Tensor:
    """Row-wise quantile of ``N x K`` values, linear interpolation (NumPy's default)."""
    k = v.shape[1]
    s, _ = torch.sort(v, dim=1)
    pos = q * (k - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, k - 1)
    frac = pos - lo
    return s[:, lo] + frac * (s[:, hi] - s[:, lo])


def deltae2000(
    srgb_x: torch.Tensor,
    srgb_y: torch.Tensor,
    border: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """CIEDE2000 between two sRGB images, reduced per image.

    Args:
        srgb_x, srgb_y: ``N x 3 x H x W`` sRGB in [0, 1].
        border: pixels removed on each side before computing.
        reduction: ``"mean"`` (mean over pixels) or ``"p95"`` (95th percentile over pixels,
            linear interpolation between order statistics as ``numpy.percentile``).

    Returns:
        ``N`` values, lower is better, 0 for identical images.
    """
    if reduction not in ("mean", "p95"):
        raise InvalidInputError(f"reduction must be 'mean' or 'p95', got {reduction!r}")
    d = deltae2000_map(srgb_x, srgb_y, border).flatten(1)
    if reduction == "mean":
        return d.mean(1)
    return _quantile_linear(d, 0.95)


# --------------------------------------------------------------------------- white balance


def angular_error(estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between estimated and true illuminant RGB vectors.

    ``atan2(|e x t|, e . t)`` (accurate near 0, unlike ``acos`` of the cosine); independent of
    each vector's scale, 0 for parallel vectors.

    Args:
        estimate, truth: ``N x 3`` illuminant colours (camera or linear RGB), non-zero,
            broadcastable.

    Returns:
        ``N`` angles in [0, 180].
    """
    for t, name in ((estimate, "estimate"), (truth, "truth")):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[1] != 3:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise InvalidInputError(f"{name} must be an N x 3 tensor of RGB vectors, got {shape}")
        if not t.is_floating_point():
            raise InvalidInputError(f"{name} must be floating point, got {t.dtype}")
        if not torch.isfinite(t).all():
            raise InvalidInputError(f"{name} contains NaN or infinite values")
        if (t.abs().sum(1) == 0).any():
            raise InvalidInputError(f"{name} contains a zero vector (no direction)")
    # Normalise first so the result is scale invariant in floating point too.
    e = estimate / estimate.norm(dim=1, keepdim=True)
    t = truth / truth.norm(dim=1, keepdim=True)
    e, t = torch.broadcast_tensors(e, t)
    cross = torch.linalg.cross(e, t, dim=1)
    sin = _safe_sqrt((cross * cross).sum(1))
    cos = (e * t).sum(1)
    return torch.rad2deg(torch.atan2(sin, cos))
