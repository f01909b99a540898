"""A camera's look, fitted from pairs: a colour matrix in linear RGB, then monotone tone curves.

A :class:`LookProfile` maps isplab's developed sRGB to a reference camera's rendering:

1. decode the develop's sRGB to linear sRGB (``linear_rgb``);
2. ``y = M @ linear_rgb + offset`` (3x3 matrix, optional per-channel offsets);
3. encode ``y`` (clipped to ``[0, Y_MAX]``) with the sRGB curve: ``u`` in ``[0, U_MAX]``;
4. a monotone piecewise-linear curve per channel (or one shared by the three) maps ``u`` to
   the output sRGB value, clipped to [0, 1].

The curve knots are spaced evenly in the encoded domain (perceptually even), and reach
beyond 1 so that colours the matrix pushes above white are not all clipped alike.

:func:`fit_look` fits the profile from (develop, reference) sRGB pairs of equal size, robust to
misalignment (images shrunk by area averaging, pixels with a strong local gradient in either
image dropped) and to clipping (pixels near white in either image dropped), by robust
(soft-L1) nonlinear least squares on the sRGB residual: the curves are parametrised by
non-negative increments, so they are monotone by construction. NumPy/SciPy/OpenCV only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isplab.errors import InvalidInputError

KIND = "isplab-look"
VERSION = 1
#: upper end of the curves' input domain, sRGB-encoded (linear 1.94); with 41 (or 33, 25...)
#: knots, 1.0 is a knot
U_MAX = 4.0 / 3.0
#: clipping thresholds (sRGB-encoded): a pixel with any channel at or above is not fitted
CLIP_HIGH = 0.99


# --------------------------------------------------------------------------- sRGB curve


def srgb_encode(linear_rgb: np.ndarray) -> np.ndarray:
    """Linear -> sRGB-encoded (IEC 61966-2-1), negative input clipped at 0; above 1 the
    power segment continues (no clipping at 1)."""
    x = np.maximum(np.asarray(linear_rgb, dtype=np.float64), 0.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def srgb_decode(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded -> linear (inverse of :func:`srgb_encode`), negative input clipped at 0."""
    u = np.maximum(np.asarray(srgb, dtype=np.float64), 0.0)
    return np.where(u <= 0.04045, u / 12.92, np.power((u + 0.055) / 1.055, 2.4))


def _encode_slope(linear_rgb: np.ndarray) -> np.ndarray:
    """d srgb_encode / d x (for x >= 0)."""
    x = np.maximum(linear_rgb, 1e-12)
    return np.where(x <= 0.0031308, 12.92, (1.055 / 2.4) * np.power(x, 1 / 2.4 - 1))


Y_MAX = float(srgb_decode(np.array(U_MAX)))


# --------------------------------------------------------------------------- the profile


@dataclass
class LookProfile:
    """A look: ``matrix`` (3x3) and ``offset`` (3) in linear sRGB, then monotone curves.

    Attributes:
        matrix: 3x3, applied to linear sRGB column vectors.
        offset: 3 per-channel offsets added after the matrix (zeros when not fitted).
        knots: ``K`` increasing curve inputs (sRGB-encoded ``u``), from 0 to :data:`U_MAX`.
        curves: ``C x K`` non-decreasing outputs at the knots; ``C`` = 3 (per channel) or 1
            (one curve for R, G, B).
        info: free-form record of the fit (pairs, pixels, residual, pipeline).
    """

    matrix: np.ndarray
    offset: np.ndarray
    knots: np.ndarray
    curves: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, dtype=np.float64)
        self.offset = np.asarray(self.offset, dtype=np.float64)
        self.knots = np.asarray(self.knots, dtype=np.float64)
        self.curves = np.atleast_2d(np.asarray(self.curves, dtype=np.float64))
        _check_profile(self)

    @property
    def per_channel(self) -> bool:
        """True when each channel has its own curve."""
        return self.curves.shape[0] == 3

    @classmethod
    def identity(cls, knots: int = 41) -> LookProfile:
        """The look that changes nothing (on [0, 1])."""
        u = np.linspace(0.0, U_MAX, knots)
        return cls(np.eye(3), np.zeros(3), u, np.minimum(u, 1.0)[None])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``kind`` and ``version`` first)."""
        return {
            "kind": KIND, "version": VERSION,
            "space": "sRGB in -> linear sRGB -> matrix @ rgb + offset -> sRGB-encoded u "
                     "(clipped to [0, u_max]) -> monotone curve (linear interpolation) -> sRGB",
            "matrix": self.matrix.tolist(), "offset": self.offset.tolist(),
            "curve": {"input": "srgb_encoded", "u_max": U_MAX,
                      "per_channel": self.per_channel, "knots": self.knots.tolist(),
                      "values": self.curves.tolist()},
            "fit": self.info,
        }

    @classmethod
    def from_dict(cls, data: Any, path: str | Path | None = None) -> LookProfile:
        """Parse the JSON form; a wrong kind, version or shape is an InvalidInputError."""
        if not isinstance(data, dict) or data.get("kind") != KIND:
            kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise InvalidInputError(f"not a look profile (kind {kind!r}, expected {KIND!r})",
                                    path)
        if data.get("version") != VERSION:
            raise InvalidInputError(f"look profile version {data.get('version')!r} is not "
                                    f"supported (this isplab reads version {VERSION})", path)
        try:
            curve = data["curve"]
            return cls(data["matrix"], data.get("offset", [0.0, 0.0, 0.0]), curve["knots"],
                       curve["values"], dict(data.get("fit") or {}))
        except InvalidInputError as exc:
            raise InvalidInputError(exc.reason, path) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed look profile ({type(exc).__name__}: {exc})",
                                    path) from None

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the JSON profile atomically (never half-written)."""
        from isplab.io import atomic_write

        text = json.dumps(self.to_dict(), indent=1) + "\n"
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> LookProfile:
        """Read a profile written by :meth:`save`."""
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except OSError as exc:
            raise InvalidInputError(f"cannot read the look profile ({exc.strerror})", p) from None
        except ValueError as exc:
            raise InvalidInputError(f"look profile is not valid JSON ({exc})", p) from None
        return cls.from_dict(data, p)


def _check_profile(p: LookProfile) -> None:
    if p.matrix.shape != (3, 3) or p.offset.shape != (3,):
        raise InvalidInputError(f"look matrix must be 3x3 and offset 3 values, got "
                                f"{p.matrix.shape} and {p.offset.shape}")
    k = p.knots
    if k.ndim != 1 or k.size < 2 or p.curves.ndim != 2 or p.curves.shape[0] not in (1, 3) \
            or p.curves.shape[1] != k.size:
        raise InvalidInputError(f"look curve must be 1 or 3 rows of values at its {k.size} "
                                f"knots, got {p.curves.shape}")
    arrays = (p.matrix, p.offset, k, p.curves)
    if not all(np.isfinite(a).all() for a in arrays):
        raise InvalidInputError("look profile holds NaN or infinite values")
    if np.any(np.diff(k) <= 0):
        raise InvalidInputError("look curve knots must increase")
    if np.any(np.diff(p.curves, axis=1) < -1e-9):
        raise InvalidInputError("look curve is not monotone (non-decreasing)")


def apply_look(srgb: np.ndarray, profile: LookProfile, channel_axis: int = -1) -> np.ndarray:
    """Apply a look to a developed sRGB image.

    Args:
        srgb: sRGB values in [0, 1] (float; uint8/uint16 are scaled), 3 channels along
            ``channel_axis`` (``H x W x 3`` by default; ``channel_axis=0`` for ``3 x H x W``).
        profile: the look.

    Returns:
        float32 sRGB in [0, 1], same shape.
    """
    arr = np.asarray(srgb)
    if arr.dtype.kind in "ui":
        arr = arr / float(np.iinfo(arr.dtype).max)
    if arr.ndim < 1 or arr.shape[channel_axis] != 3:
        raise InvalidInputError(f"apply_look needs 3 channels along axis {channel_axis}, "
                                f"got shape {arr.shape}")
    x = np.moveaxis(arr, channel_axis, -1)
    px = x.reshape(-1, 3)
    out = np.empty(px.shape, dtype=np.float32)
    step = 1 << 20  # pixels per chunk: float64 temporaries stay ~100 MB on any image size
    for i in range(0, px.shape[0], step):
        out[i:i + step] = _look_pixels(px[i:i + step], profile)
    return np.moveaxis(out.reshape(x.shape), -1, channel_axis)


def _look_pixels(px: np.ndarray, profile: LookProfile) -> np.ndarray:
    """``N x 3`` sRGB -> the look's sRGB (float32, clipped to [0, 1])."""
    y = srgb_decode(np.clip(px, 0.0, 1.0)) @ profile.matrix.T + profile.offset
    u = srgb_encode(np.clip(y, 0.0, Y_MAX))
    out = np.empty(u.shape, dtype=np.float32)
    for c in range(3):
        values = profile.curves[c if profile.per_channel else 0]
        out[:, c] = np.interp(u[:, c], profile.knots, values)
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------- samples


def _as_rgb(image: np.ndarray, what: str, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype.kind in "ui":
        arr = arr / float(np.iinfo(arr.dtype).max)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InvalidInputError(f"{what} must be H x W x 3, got shape {arr.shape}", name)
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{what} holds NaN or infinite values", name)
    return np.clip(arr, 0.0, 1.0)


def shrink_factor(shape: tuple[int, ...], target: int = 320, minimum: int = 2) -> int:
    """The area-averaging factor used to fit an image of ``shape`` (long side ~ ``target``)."""
    return max(minimum, math.ceil(max(shape[:2]) / target))


def usable_pixels(develop_srgb: np.ndarray, reference_srgb: np.ndarray, factor: int,
                  keep_fraction: float = 0.5, flat: float = 0.02) -> tuple[np.ndarray, ...]:
    """(develop, reference, mask): both shrunk by ``factor`` (area average) and the pixels
    fit for the look: no clipped pixel of either image in their block, not on the border,
    and a local gradient (3x3 max of the Sobel magnitude, the larger of the two images) at
    most ``max(flat, its keep_fraction quantile)``: flat areas always count, and at least
    ``keep_fraction`` of the rest, the smoothest."""
    import cv2

    h, w = develop_srgb.shape[:2]
    hs, ws = h // factor, w // factor
    if hs < 3 or ws < 3:
        empty = np.zeros((max(hs, 0), max(ws, 0)), bool)
        return develop_srgb[:hs, :ws], reference_srgb[:hs, :ws], empty
    crop = (slice(0, hs * factor), slice(0, ws * factor))
    clipped = ((develop_srgb[crop] >= CLIP_HIGH) | (reference_srgb[crop] >= CLIP_HIGH)).any(2)

    def shrink(a: np.ndarray) -> np.ndarray:
        return cv2.resize(np.ascontiguousarray(a[crop], dtype=np.float32), (ws, hs),
                          interpolation=cv2.INTER_AREA)

    dev, ref = shrink(develop_srgb), shrink(reference_srgb)
    ok = shrink(~clipped) >= 0.999
    grad = np.zeros((hs, ws), np.float32)
    for img in (dev, ref):
        g = img.mean(2)
        mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3),
                       cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)) / 8.0
        grad = np.maximum(grad, cv2.dilate(mag, np.ones((3, 3), np.uint8)))
    ok[0, :] = ok[-1, :] = ok[:, 0] = ok[:, -1] = False
    if ok.any():
        limit = max(flat, float(np.quantile(grad[ok], keep_fraction)))
        ok &= grad <= limit
    return dev, ref, ok


def look_samples(develop_srgb: Sequence[np.ndarray], reference_srgb: Sequence[np.ndarray],
                 max_pixels: int = 40000, seed: int = 0, names: Sequence[str] | None = None,
                 keep_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Sample fit pixels from pairs: (develop linear RGB ``N x 3``, reference sRGB ``N x 3``,
    usable pixels per pair). Each pair gives at most ``max_pixels / n`` random pixels."""
    if len(develop_srgb) != len(reference_srgb) or not develop_srgb:
        raise InvalidInputError(f"need as many references as develops (at least one), got "
                                f"{len(develop_srgb)} and {len(reference_srgb)}")
    names = list(names) if names is not None else [f"pair {i}" for i in
                                                   range(len(develop_srgb))]
    rng = np.random.default_rng(seed)
    quota = max(1, max_pixels // len(develop_srgb))
    xs, rs, counts = [], [], []
    for dev, ref, name in zip(develop_srgb, reference_srgb, names, strict=True):
        dev, ref = _as_rgb(dev, "develop", name), _as_rgb(ref, "reference", name)
        if dev.shape != ref.shape:
            raise InvalidInputError(
                f"develop is {dev.shape[1]}x{dev.shape[0]} but the reference is "
                f"{ref.shape[1]}x{ref.shape[0]}: a pair must have one size", name)
        d, r, ok = usable_pixels(dev, ref, shrink_factor(dev.shape), keep_fraction)
        idx = np.flatnonzero(ok)
        counts.append(int(idx.size))
        if idx.size > quota:
            idx = np.sort(rng.choice(idx, quota, replace=False))
        xs.append(srgb_decode(d.reshape(-1, 3)[idx]))
        rs.append(r.reshape(-1, 3)[idx].astype(np.float64))
    return np.concatenate(xs), np.concatenate(rs), counts


# --------------------------------------------------------------------------- fitting


@dataclass
class _Layout:
    """Where each parameter group sits in the parameter vector."""

    per_channel: bool
    offsets: bool
    knots: np.ndarray

    @property
    def n_matrix(self) -> int:
        return 6 if self.per_channel else 9

    @property
    def n_offset(self) -> int:
        return 3 if self.offsets else 0

    @property
    def n_curves(self) -> int:
        return 3 if self.per_channel else 1

    @property
    def curve_start(self) -> int:
        return self.n_matrix + self.n_offset

    @property
    def size(self) -> int:
        return self.curve_start + self.n_curves * self.knots.size

    def matrix(self, p: np.ndarray) -> np.ndarray:
        if not self.per_channel:
            return p[:9].reshape(3, 3)
        m = np.zeros((3, 3))
        m[_OFF] = p[:6]
        m[np.diag_indices(3)] = 1.0 - m.sum(1)  # rows sum to 1: grey stays grey
        return m

    def offset(self, p: np.ndarray) -> np.ndarray:
        return p[self.n_matrix:self.curve_start] if self.offsets else np.zeros(3)

    def curves(self, p: np.ndarray) -> np.ndarray:
        inc = p[self.curve_start:].reshape(self.n_curves, self.knots.size)
        return np.cumsum(inc, axis=1)

    def initial(self) -> np.ndarray:
        m = np.zeros(6) if self.per_channel else np.eye(3).ravel()
        v = np.minimum(self.knots, 1.0)
        inc = np.maximum(np.diff(v, prepend=0.0), 1e-4)
        return np.concatenate([m, np.zeros(self.n_offset), np.tile(inc, self.n_curves)])


_OFF = (np.array([0, 0, 1, 1, 2, 2]), np.array([1, 2, 0, 2, 0, 1]))


def _predict(layout: _Layout, p: np.ndarray, x: np.ndarray):
    """Model output ``N x 3`` and what the Jacobian needs."""
    y = x @ layout.matrix(p).T + layout.offset(p)
    yc = np.clip(y, 0.0, Y_MAX)
    u = srgb_encode(yc)
    dudy = np.where((y > 0) & (y < Y_MAX), _encode_slope(yc), 0.0)
    h = layout.knots[1] - layout.knots[0]
    k0 = np.clip(np.floor(u / h).astype(np.int64), 0, layout.knots.size - 2)
    t = u / h - k0
    v = layout.curves(p)
    ci = np.arange(3) if layout.per_channel else np.zeros(3, np.int64)
    lo, hi = v[ci, k0], v[ci, k0 + 1]
    return (1 - t) * lo + t * hi, dict(k0=k0, t=t, slope=(hi - lo) / h, dudy=dudy)


def _regularisers(layout: _Layout, smooth: float, ridge: float):
    """Linear penalty rows (values, dense Jacobian rows): curve smoothness (second
    differences), offsets ridge, and the shared-curve matrix scale (mean row sum 1)."""
    rows = []
    n, k = layout.n_curves, layout.knots.size
    s = math.sqrt(smooth)
    for c in range(n):
        for j in range(1, k - 1):
            r = np.zeros(layout.size)
            r[layout.curve_start + c * k + j + 1] = s
            r[layout.curve_start + c * k + j] = -s
            rows.append(r)
    for j in range(layout.n_offset):
        r = np.zeros(layout.size)
        r[layout.n_matrix + j] = math.sqrt(ridge)
        rows.append(r)
    if not layout.per_channel:
        r = np.zeros(layout.size)
        r[:9] = 1.0 / 3.0
        rows.append(r)
    jac = np.array(rows)
    target = np.zeros(len(rows))
    if not layout.per_channel:
        target[-1] = 1.0
    return jac, target


def _jacobian_parts(layout: _Layout, x: np.ndarray, aux: dict):
    """The data Jacobian in the curve *values* basis, ``J = [D | hat]``: ``D`` dense
    ``3N x m`` (matrix and offsets), ``hat`` sparse with two non-zeros per row (the linear
    interpolation weights of each prediction's two knots)."""
    from scipy import sparse

    n, k = x.shape[0], layout.knots.size
    g = aux["slope"] * aux["dudy"]  # d pred / d y, N x 3
    m = layout.curve_start
    dense = np.zeros((n, 3, m))
    for c in range(3):
        if layout.per_channel:
            for col, (rc, j) in enumerate(zip(*_OFF, strict=True)):
                if rc == c:
                    dense[:, c, col] = g[:, c] * (x[:, j] - x[:, c])
        else:
            dense[:, c, c * 3:c * 3 + 3] = g[:, c:c + 1] * x
        if layout.offsets:
            dense[:, c, layout.n_matrix + c] = g[:, c]
    dense = dense.reshape(3 * n, m)
    ci = np.tile(np.arange(3) if layout.per_channel else np.zeros(3, np.int64), n)
    k0, t, r = aux["k0"].ravel(), aux["t"].ravel(), np.arange(3 * n)
    hat = sparse.csr_matrix(
        (np.concatenate([1 - t, t]), (np.concatenate([r, r]),
                                      np.concatenate([ci * k + k0, ci * k + k0 + 1]))),
        shape=(3 * n, layout.n_curves * k))
    return dense, hat


def _robust(res: np.ndarray, f: float) -> tuple[float, np.ndarray]:
    """Soft-L1 cost ``sum 2 f^2 (sqrt(1 + (r/f)^2) - 1)`` and the IRLS weights."""
    z = (res / f) ** 2
    s = np.sqrt(1.0 + z)
    return float(np.sum(2.0 * f * f * (s - 1.0))), 1.0 / s


def _value_basis(layout: _Layout) -> np.ndarray:
    """``values = B @ params``: identity on the matrix and offsets, a cumulative sum per
    curve (its first value, then non-negative increments)."""
    k, m = layout.knots.size, layout.curve_start
    basis = np.zeros((layout.size, layout.size))
    basis[:m, :m] = np.eye(m)
    for c in range(layout.n_curves):
        s = m + c * k
        basis[s:s + k, s:s + k] = np.tril(np.ones((k, k)))
    return basis


def _gauss_newton(layout: _Layout, x: np.ndarray, aux: dict, w: np.ndarray,
                  res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(J^T W J, J^T W r)`` / N in the values basis (the factor 2 of both dropped)."""
    m, n = layout.curve_start, x.shape[0]
    dense, hat = _jacobian_parts(layout, x, aux)
    wd = dense * w[:, None]
    hw = hat.multiply(w[:, None]).tocsr()
    hv = np.zeros((layout.size, layout.size))
    hv[:m, :m] = dense.T @ wd
    hv[m:, :m] = hw.T @ dense
    hv[:m, m:] = hv[m:, :m].T
    hv[m:, m:] = (hat.T @ hw).toarray()
    return hv / n, np.concatenate([wd.T @ res, hw.T @ res]) / n


def _solve(layout: _Layout, x: np.ndarray, ref: np.ndarray, f: float, smooth: float,
           max_iterations: int) -> tuple[np.ndarray, int]:
    """Projected Levenberg-Marquardt with IRLS (soft-L1) weights: the curves' increments
    stay >= 0 (one at 0 whose gradient pushes it lower is held for the step); a step is
    taken only when it lowers the robust cost."""
    reg, target = _regularisers(layout, smooth, 1e-2)
    basis = _value_basis(layout)
    bounded = np.zeros(layout.size, bool)
    bounded[layout.curve_start:] = True
    bounded[layout.curve_start + np.arange(layout.n_curves) * layout.knots.size] = False

    def cost(p: np.ndarray):
        pred, aux = _predict(layout, p, x)
        res = (pred - ref).ravel()
        data, w = _robust(res, f)
        rr = reg @ p - target
        return data / x.shape[0] + float(rr @ rr), res, w, aux

    p = layout.initial()
    state = cost(p)
    lam, done = 1e-3, 0
    while done < max_iterations:
        done += 1
        hv, gv = _gauss_newton(layout, x, state[3], state[2], state[1])
        h = basis.T @ hv @ basis + reg.T @ reg
        g = basis.T @ gv + reg.T @ (reg @ p - target)
        free = ~(bounded & (p <= 1e-12) & (g > 0))
        a = h[np.ix_(free, free)]
        trial_state = None
        while lam < 1e8:
            step = np.zeros_like(p)
            step[free] = -np.linalg.solve(a + lam * np.diag(np.diag(a) + 1e-12), g[free])
            trial = p + step
            trial[bounded] = np.maximum(trial[bounded], 0.0)
            trial_state = cost(trial)
            if trial_state[0] < state[0]:
                lam = max(lam / 3.0, 1e-9)
                break
            lam *= 4.0
        if lam >= 1e8 or trial_state is None:
            break
        gain = state[0] - trial_state[0]
        p, state = trial, trial_state
        if gain < 1e-10 * max(state[0], 1e-12):
            break
    return p, done


def fit_look(develop_srgb: Sequence[np.ndarray], reference_srgb: Sequence[np.ndarray], *,
             per_channel: bool = True, offsets: bool = True, knots: int = 41,
             max_pixels: int = 40000, min_pixels: int = 500, seed: int = 0,
             names: Sequence[str] | None = None, robust_scale: float = 0.03,
             smooth: float = 1e-3, max_iterations: int = 100) -> LookProfile:
    """Fit the look that takes each develop to its reference.

    Args:
        develop_srgb, reference_srgb: pairs of ``H x W x 3`` sRGB images in [0, 1] (float,
            uint8 or uint16), each pair one size (different pairs may differ).
        per_channel: a curve per channel (the matrix's rows then sum to 1, so the curves
            carry the channel gains); False: one curve, a free matrix (mean row sum 1).
        offsets: fit per-channel offsets after the matrix (flare, black-level differences;
            lightly ridge-regularised towards 0).
        knots: curve knots (evenly spaced in the sRGB-encoded domain ``[0, U_MAX]``).
        max_pixels: fit pixels sampled over all pairs (after shrinking and masking).
        min_pixels: fewer usable pixels is an error (clipped or edges everywhere).
        seed: pixel sampling seed (the fit is deterministic for a seed).
        names: pair names for the error messages.
        robust_scale: residual (sRGB units) beyond which the soft-L1 loss down-weights
            (misaligned or occluded pixels).
        smooth: weight of the curves' second-difference penalty (fills knots without data).
        max_iterations: Levenberg-Marquardt iterations at most.

    Raises:
        InvalidInputError: pairs of different sizes, NaN, too few usable pixels.
    """
    x, ref, counts = look_samples(develop_srgb, reference_srgb, max_pixels, seed, names)
    return fit_look_samples(x, ref, counts, per_channel=per_channel, offsets=offsets,
                            knots=knots, min_pixels=min_pixels, names=names,
                            robust_scale=robust_scale, smooth=smooth,
                            max_iterations=max_iterations)


def fit_look_samples(x: np.ndarray, ref: np.ndarray, counts: Sequence[int], *,
                     per_channel: bool = True, offsets: bool = True, knots: int = 41,
                     min_pixels: int = 500, names: Sequence[str] | None = None,
                     robust_scale: float = 0.03, smooth: float = 1e-3,
                     max_iterations: int = 100) -> LookProfile:
    """:func:`fit_look` on samples drawn beforehand (:func:`look_samples`, concatenated):
    ``x`` develop linear RGB ``N x 3``, ``ref`` reference sRGB ``N x 3``, ``counts`` the
    usable pixels of each pair (recorded in the profile's ``info``)."""
    if x.shape[0] < min_pixels:
        label = ", ".join(names) if names is not None else f"{len(counts)} pairs"
        raise InvalidInputError(
            f"too few usable pixels to fit a look: {x.shape[0]} < {min_pixels} after dropping "
            f"clipped pixels and edges (pairs: {label})")
    layout = _Layout(per_channel, offsets, np.linspace(0.0, U_MAX, int(knots)))
    p, iterations = _solve(layout, x, ref, robust_scale, smooth, max_iterations)
    pred, _ = _predict(layout, p, x)
    err = pred - ref
    info = {"pairs": len(counts), "pixels": int(x.shape[0]),
            "usable_per_pair": [int(c) for c in counts],
            "rms": float(np.sqrt(np.mean(err ** 2))),
            "median_abs": float(np.median(np.abs(err))), "iterations": iterations,
            "per_channel": per_channel, "offsets": offsets}
    curves = np.maximum.accumulate(layout.curves(p), axis=1)
    return LookProfile(layout.matrix(p), layout.offset(p), layout.knots, curves, info)
