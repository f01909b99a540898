"""Unprocessing: sRGB photos -> realistic linear raw (Brooks et al., CVPR 2019), and back.

:func:`unprocess` inverts a simple camera pipeline step by step, with camera parameters
sampled per image (:func:`sample_params`):

1. clip to [0, 1] and invert the smoothstep tone curve (:func:`~isplab.classic.inverse_smoothstep`);
2. decode the sRGB transfer curve (:func:`~isplab.classic.srgb_to_linear`; ``brooks=True``
   uses Brooks' ``max(x, 1e-8) ** 2.2`` instead);
3. linear sRGB -> camera RGB with a random convex mix of 4 XYZ -> camera matrices;
4. undo the white-balance and brightness gains, sparing highlights (so that a white pixel
   stays saturated instead of turning grey);
5. clip to [0, 1] and sample through a Bayer CFA (packed R, G1, G2, B, or a mosaic).

:func:`process` is the matching forward pipeline from :mod:`isplab.classic` stages, so that
``process(unprocess(x))`` gives ``x`` back up to the CFA sampling (bilinear demosaicing) and
the clipped highlights. Everything is torch, batched (``N x C x H x W``), float32, on any device;
each random draw comes from a :class:`torch.Generator` (or an int seed).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from isplab.classic import (
    SRGB_TO_XYZ,
    XYZ_TO_SRGB,
    apply_color_matrix,
    apply_white_balance,
    demosaic_bilinear,
    inverse_smoothstep,
    smoothstep,
    srgb_gamma,
    srgb_to_linear,
)
from isplab.errors import InvalidInputError
from isplab.raw.cfa import check_pattern, mosaic, pack, unpack

#: The four XYZ -> camera matrices of Brooks et al. (their ``random_ccm``); a sampled
#: camera is a random convex combination of them.
XYZ_TO_CAMS: tuple[np.ndarray, ...] = tuple(
    np.array(m, dtype=np.float64)
    for m in (
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
    )
)

#: Ranges of the sampled gains (Brooks et al.): ``1 / rgb_gain ~ N(0.8, 0.1)`` (truncated
#: to ``RGB_GAIN_INV_CLAMP``, +-5 sigma, so that the gain stays finite and positive),
#: ``red_gain ~ U(RED_GAIN_RANGE)``, ``blue_gain ~ U(BLUE_GAIN_RANGE)``.
RGB_GAIN_INV_MEAN, RGB_GAIN_INV_STD = 0.8, 0.1
RGB_GAIN_INV_CLAMP = (0.3, 1.3)
RED_GAIN_RANGE = (1.9, 2.4)
BLUE_GAIN_RANGE = (1.5, 1.9)
#: Highlight protection: camera values whose channel mean is above this are spared from
#: the inverse gains (fully at 1).
HIGHLIGHT_INFLECTION = 0.9

GAMMAS = ("srgb", "2.2")


def as_generator(generator: torch.Generator | int | None,
                 device: torch.device | str | None = None) -> torch.Generator:
    """A :class:`torch.Generator`: ``generator`` itself, a new one seeded with an int, or a
    new randomly seeded one for None. New generators live on ``device`` (default CPU)."""
    if isinstance(generator, torch.Generator):
        return generator
    g = torch.Generator(device=device if device is not None else "cpu")
    if generator is None:
        g.seed()
    else:
        try:
            g.manual_seed(int(generator))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InvalidInputError(
                f"generator must be a torch.Generator, an int seed or None, got {generator!r}"
            ) from exc
    return g


def _uniform(g: torch.Generator, n: int) -> np.ndarray:
    """``n`` U[0, 1) draws in float64 from ``g`` (on its device), as a NumPy array."""
    return torch.rand(n, generator=g, device=g.device, dtype=torch.float64).cpu().numpy()


def _normal(g: torch.Generator, n: int) -> np.ndarray:
    return torch.randn(n, generator=g, device=g.device, dtype=torch.float64).cpu().numpy()


def _matrix(m: Any, name: str) -> np.ndarray:
    a = np.asarray(m, dtype=np.float64)
    if a.shape != (3, 3) or not np.all(np.isfinite(a)):
        raise InvalidInputError(f"{name} must be a finite 3x3 matrix, got shape {a.shape}")
    return a


@dataclass
class UnprocessParams:
    """The camera sampled for one image.

    Attributes:
        rgb_to_cam: 3x3 linear sRGB -> camera RGB matrix, rows summing to 1 (a white
            linear sRGB pixel gives a white camera pixel before white balance).
        cam_to_rgb: its inverse (white-balanced camera RGB -> linear sRGB).
        rgb_gain: brightness gain of the forward pipeline (``1 / N(0.8, 0.1)``).
        red_gain: white-balance gain of red, ``U(1.9, 2.4)``.
        blue_gain: white-balance gain of blue, ``U(1.5, 1.9)``.
        cfa: Bayer pattern of the simulated sensor.
        xyz_to_cam: the sampled XYZ -> camera mix before row normalisation (what a DNG
            ColorMatrix holds), or None when not known.
    """

    rgb_to_cam: np.ndarray
    cam_to_rgb: np.ndarray
    rgb_gain: float
    red_gain: float
    blue_gain: float
    cfa: str = "RGGB"
    xyz_to_cam: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        self.rgb_to_cam = _matrix(self.rgb_to_cam, "rgb_to_cam")
        self.cam_to_rgb = _matrix(self.cam_to_rgb, "cam_to_rgb")
        if self.xyz_to_cam is not None:
            self.xyz_to_cam = _matrix(self.xyz_to_cam, "xyz_to_cam")
        for name in ("rgb_gain", "red_gain", "blue_gain"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise InvalidInputError(f"{name} must be finite and positive, got {v}")
            setattr(self, name, v)
        self.cfa = check_pattern(self.cfa)

    @property
    def wb_gains(self) -> tuple[float, float, float]:
        """White-balance gains (R, G, B) with G = 1 (the DNG AsShotNeutral is 1 / these)."""
        return (self.red_gain, 1.0, self.blue_gain)

    @property
    def inverse_gains(self) -> np.ndarray:
        """The gains :func:`unprocess` applies (before highlight protection):
        ``(1 / red, 1, 1 / blue) / rgb_gain``."""
        return np.array([1.0 / self.red_gain, 1.0, 1.0 / self.blue_gain]) / self.rgb_gain

    def xyz_to_camera(self) -> np.ndarray:
        """An XYZ (D65) -> camera matrix for a DNG ColorMatrix: ``xyz_to_cam`` when known,
        else ``rgb_to_cam @ XYZ_TO_SRGB`` (equal up to row scaling)."""
        if self.xyz_to_cam is not None:
            return self.xyz_to_cam
        return self.rgb_to_cam @ XYZ_TO_SRGB

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (lists, floats, str); :meth:`from_dict` reads it back."""
        d: dict[str, Any] = {
            "rgb_to_cam": self.rgb_to_cam.tolist(),
            "cam_to_rgb": self.cam_to_rgb.tolist(),
            "rgb_gain": self.rgb_gain,
            "red_gain": self.red_gain,
            "blue_gain": self.blue_gain,
            "cfa": self.cfa,
        }
        if self.xyz_to_cam is not None:
            d["xyz_to_cam"] = self.xyz_to_cam.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnprocessParams:
        """Parameters from :meth:`to_dict` output (or any metadata dict holding its keys;
        other keys are ignored). ``cam_to_rgb`` is recomputed when missing."""
        if isinstance(d, UnprocessParams):
            return d
        if not isinstance(d, dict):
            raise InvalidInputError(f"expected a metadata dict, got {type(d).__name__}")
        missing = [k for k in ("rgb_to_cam", "rgb_gain", "red_gain", "blue_gain") if k not in d]
        if missing:
            raise InvalidInputError(f"unprocess metadata lacks {', '.join(missing)}")
        rgb_to_cam = _matrix(d["rgb_to_cam"], "rgb_to_cam")
        cam_to_rgb = d.get("cam_to_rgb")
        return cls(
            rgb_to_cam=rgb_to_cam,
            cam_to_rgb=np.linalg.inv(rgb_to_cam) if cam_to_rgb is None else cam_to_rgb,
            rgb_gain=d["rgb_gain"], red_gain=d["red_gain"], blue_gain=d["blue_gain"],
            cfa=d.get("cfa", "RGGB"), xyz_to_cam=d.get("xyz_to_cam"),
        )


def random_ccm(generator: torch.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A random camera: ``(xyz_to_cam, rgb_to_cam)``.

    ``xyz_to_cam`` is a convex combination of :data:`XYZ_TO_CAMS` with weights drawn from
    ``U(1e-8, 1e8)`` and normalised; ``rgb_to_cam = xyz_to_cam @ SRGB_TO_XYZ`` with each row
    normalised to sum to 1.
    """
    g = as_generator(generator)
    w = 1e-8 + (1e8 - 1e-8) * _uniform(g, len(XYZ_TO_CAMS))
    xyz_to_cam = sum(wi * m for wi, m in zip(w, XYZ_TO_CAMS, strict=True)) / w.sum()
    rgb_to_cam = xyz_to_cam @ SRGB_TO_XYZ
    rgb_to_cam = rgb_to_cam / rgb_to_cam.sum(axis=1, keepdims=True)
    return xyz_to_cam, rgb_to_cam


def sample_params(generator: torch.Generator | int | None = None,
                  cfa: str = "RGGB") -> UnprocessParams:
    """Sample a camera (colour matrix, brightness and white-balance gains) for one image.

    Args:
        generator: a :class:`torch.Generator`, an int seed, or None (random).
        cfa: the simulated sensor's Bayer pattern (recorded, not sampled).
    """
    cfa = check_pattern(cfa)
    g = as_generator(generator)
    xyz_to_cam, rgb_to_cam = random_ccm(g)
    z = float(_normal(g, 1)[0])
    inv = float(np.clip(RGB_GAIN_INV_MEAN + RGB_GAIN_INV_STD * z, *RGB_GAIN_INV_CLAMP))
    u = _uniform(g, 2)
    red = RED_GAIN_RANGE[0] + (RED_GAIN_RANGE[1] - RED_GAIN_RANGE[0]) * float(u[0])
    blue = BLUE_GAIN_RANGE[0] + (BLUE_GAIN_RANGE[1] - BLUE_GAIN_RANGE[0]) * float(u[1])
    return UnprocessParams(
        rgb_to_cam=rgb_to_cam, cam_to_rgb=np.linalg.inv(rgb_to_cam), rgb_gain=1.0 / inv,
        red_gain=red, blue_gain=blue, cfa=cfa, xyz_to_cam=xyz_to_cam,
    )


# --------------------------------------------------------------------------- helpers


def _batched(x: torch.Tensor, channels: tuple[int, ...], name: str,
             allow_uint8: bool = False) -> tuple[torch.Tensor, bool]:
    """``x`` as N x C x H x W (adding a batch axis to C x H x W) and whether one was added."""
    if not isinstance(x, torch.Tensor):
        raise InvalidInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point() and not (allow_uint8 and x.dtype == torch.uint8):
        raise InvalidInputError(f"{name} must be floating point in [0, 1], got {x.dtype}")
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[1] not in channels:
        want = " or ".join(str(c) for c in channels)
        raise InvalidInputError(
            f"{name} must have shape {want} x H x W or N x {want} x H x W, got {tuple(x.shape)}")
    return x, single


def _params_list(metadata, n: int, what: str = "metadata") -> list[UnprocessParams]:
    """One :class:`UnprocessParams` per image from a dict/params or a sequence of them."""
    if isinstance(metadata, (dict, UnprocessParams)):
        return [UnprocessParams.from_dict(metadata)] * n
    if isinstance(metadata, Sequence) and not isinstance(metadata, str):
        items = [UnprocessParams.from_dict(m) for m in metadata]
        if len(items) == 1:
            return items * n
        if len(items) != n:
            raise InvalidInputError(f"{len(items)} {what} entries for a batch of {n} images")
        return items
    raise InvalidInputError(f"{what} must be a dict, UnprocessParams or a list of them, got "
                            f"{type(metadata).__name__}")


def _gamma_of(metadata, n: int) -> list[str]:
    if isinstance(metadata, dict):
        return [str(metadata.get("gamma", "srgb"))] * n
    if isinstance(metadata, Sequence) and not isinstance(metadata, str):
        gs = [str(m.get("gamma", "srgb")) if isinstance(m, dict) else "srgb" for m in metadata]
        return gs * n if len(gs) == 1 else gs
    return ["srgb"] * n


def _stack(mats: list[np.ndarray], ref: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.stack(mats), dtype=ref.dtype, device=ref.device)


@functools.lru_cache(maxsize=4)
def _decode_table(brooks: bool) -> np.ndarray:
    """The decoding steps on every 8-bit value: a 256-entry float32 table."""
    v = torch.arange(256, dtype=torch.float32)[None, None, None] / 255.0
    return decode_srgb(v.expand(1, 3, 1, 256), brooks)[0, 0, 0].numpy().copy()


def decode_srgb(srgb: torch.Tensor, brooks: bool = False) -> torch.Tensor:
    """Steps 1-2 of :func:`unprocess`: inverse smoothstep tone curve, then the inverse sRGB
    curve (``max(x, 1e-8) ** 2.2`` with ``brooks``): sRGB -> linear RGB.

    A ``uint8`` input (0-255) goes through a 256-entry table of the same float32 computation
    on ``v / 255``: identical values, several times faster (the training datasets' photos are
    8-bit)."""
    if srgb.dtype == torch.uint8:
        lin = np.take(_decode_table(bool(brooks)), srgb.cpu().numpy())
        return torch.from_numpy(lin).to(srgb.device)
    x = inverse_smoothstep(srgb.clamp(0.0, 1.0))
    return x.clamp(min=1e-8) ** 2.2 if brooks else srgb_to_linear(x)


def unprocess_to_camera(srgb: torch.Tensor, params: list[UnprocessParams],
                        brooks: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1-4 of :func:`unprocess`: sRGB ``N x 3 x H x W`` -> linear camera RGB.

    Returns:
        ``(camera, protected)``: the camera RGB after the inverse gains, **not clipped**
        (values outside [0, 1] are lost by the clip of :func:`unprocess`), and a bool
        ``N x 1 x H x W`` map of the pixels where highlight protection changed the gains.
    """
    x = decode_srgb(srgb, brooks)
    x = apply_color_matrix(x, _stack([p.rgb_to_cam for p in params], x))
    gains = _stack([p.inverse_gains for p in params], x)[:, :, None, None]
    gray = x.mean(dim=1, keepdim=True)
    mask = ((gray - HIGHLIGHT_INFLECTION).clamp(min=0.0) / (1.0 - HIGHLIGHT_INFLECTION)) ** 2
    safe = torch.maximum(mask + (1.0 - mask) * gains, gains)
    return x * safe, (mask > 0) & (gains < 1).any(dim=1, keepdim=True)


def roundtrip_mask(srgb: torch.Tensor, params: UnprocessParams | dict | list,
                   brooks: bool = False) -> torch.Tensor:
    """Where ``process(unprocess(srgb, params=params))`` can give ``srgb`` back.

    False where a camera value left [0, 1] before the clip of :func:`unprocess` (saturated
    colours and highlights) or where highlight protection spared the pixel from the inverse
    gains. Elsewhere the colour and tone steps invert exactly (the CFA sampling aside).

    Args:
        srgb: ``3 x H x W`` or ``N x 3 x H x W`` sRGB in [0, 1].
        params: the parameters used (one for all images, or one per image).

    Returns:
        bool ``1 x H x W`` / ``N x 1 x H x W``.
    """
    x, single = _batched(srgb, (3,), "srgb")
    cam, protected = unprocess_to_camera(x, _params_list(params, x.shape[0], "params"), brooks)
    ok = ((cam >= 0) & (cam <= 1)).all(dim=1, keepdim=True) & ~protected
    return ok[0] if single else ok


def unprocess(
    srgb: torch.Tensor,
    generator: torch.Generator | int | None = None,
    params: UnprocessParams | dict | list | None = None,
    cfa: str | None = None,
    packed: bool = True,
    *,
    mosaic_output: bool = True,
    brooks: bool = False,
) -> tuple[torch.Tensor, dict | list[dict]]:
    """sRGB photo -> realistic linear raw (Brooks et al. 2019).

    Args:
        srgb: ``3 x H x W`` (H, W even) or ``N x 3 x H x W`` sRGB in [0, 1] (clipped), or
            ``uint8`` 0-255 (decoded through a table: same values as ``srgb / 255``, faster).
        generator: :class:`torch.Generator`, int seed or None; draws the camera of each image
            (in batch order) when ``params`` is None.
        params: use these parameters instead of sampling: one for every image, or a list
            with one per image (dicts from :meth:`UnprocessParams.to_dict` work too).
        cfa: Bayer pattern; default ``params.cfa`` when params are given, else ``RGGB``.
            Overrides ``params.cfa`` when given.
        packed: return the packed ``4 x H/2 x W/2`` raw in R, G1, G2, B order (sampled at
            the sites of ``cfa``); False returns the ``1 x H x W`` mosaic in ``cfa`` layout.
        mosaic_output: False skips the CFA sampling and returns the full-resolution camera
            RGB ``3 x H x W`` (what the sensor would see without a CFA), e.g. to check the
            colour/tone round trip without demosaicing error.
        brooks: decode with Brooks' ``max(x, 1e-8) ** 2.2`` instead of the sRGB curve
            (recorded as ``gamma: "2.2"`` in the metadata, which :func:`process` follows).

    Returns:
        ``(raw, metadata)``: linear camera raw in [0, 1], float (the input's dtype; float32
        for uint8), and
        ``params.to_dict()`` plus ``gamma`` (``"srgb"`` or ``"2.2"``); a list of N dicts when
        the input is batched.
    """
    x, single = _batched(srgb, (3,), "srgb", allow_uint8=True)
    n, _, h, w = x.shape
    if mosaic_output and (h % 2 or w % 2 or h < 2 or w < 2):
        raise InvalidInputError(
            f"image height and width must be even to sample a 2x2 CFA, got {h} x {w}")
    if params is None:
        g = as_generator(generator)
        plist = [sample_params(g, cfa or "RGGB") for _ in range(n)]
    else:
        plist = _params_list(params, n, "params")
        if cfa is not None:
            cfa = check_pattern(cfa)
            plist = [p if p.cfa == cfa else replace(p, cfa=cfa) for p in plist]
    cam, _ = unprocess_to_camera(x, plist, brooks)
    cam = cam.clamp(0.0, 1.0)
    if not mosaic_output:
        out = cam
    else:
        mosaics = _mosaic_per_image(cam, [p.cfa for p in plist])
        out = _pack_per_image(mosaics, [p.cfa for p in plist]) if packed else mosaics
    gamma = "2.2" if brooks else "srgb"
    metas = [{**p.to_dict(), "gamma": gamma} for p in plist]
    if single:
        return out[0], metas[0]
    return out, metas


def _mosaic_per_image(rgb: torch.Tensor, cfas: list[str]) -> torch.Tensor:
    if len(set(cfas)) == 1:
        return mosaic(rgb, cfas[0])
    return torch.cat([mosaic(rgb[i:i + 1], c) for i, c in enumerate(cfas)])


def _pack_per_image(m: torch.Tensor, cfas: list[str]) -> torch.Tensor:
    if len(set(cfas)) == 1:
        return pack(m, cfas[0])
    return torch.cat([pack(m[i:i + 1], c) for i, c in enumerate(cfas)])


def _demosaic_per_image(m: torch.Tensor, cfas: list[str], method: Any = "bilinear",
                        gains: torch.Tensor | None = None, noise: Any = None) -> torch.Tensor:
    if callable(method):  # a learned stage: demosaicker(mosaic, cfa, gains, noise)
        return torch.cat([method(m[i:i + 1], c, None if gains is None else gains[i], noise)
                          for i, c in enumerate(cfas)])
    if method == "bilinear":
        if len(set(cfas)) == 1:
            return demosaic_bilinear(m, cfas[0])
        return torch.cat([demosaic_bilinear(m[i:i + 1], c) for i, c in enumerate(cfas)])
    from isplab.classic import demosaic

    return torch.cat([demosaic(m[i:i + 1], c, method) for i, c in enumerate(cfas)])


def process(
    raw: torch.Tensor,
    metadata: dict | UnprocessParams | list,
    *,
    cfa: str | None = None,
    brooks: bool = False,
    gamma: str | None = None,
    tone: bool | None = None,
    demosaic: Any = "bilinear",
    noise: Any = None,
) -> torch.Tensor:
    """The forward pipeline matching :func:`unprocess`: linear camera raw -> sRGB.

    White-balance gains times ``rgb_gain`` -> clip to [0, 1] -> bilinear demosaic ->
    ``cam_to_rgb`` -> clip -> sRGB transfer curve -> smoothstep tone curve, so that
    ``process(unprocess(x))`` gives ``x`` back (outside clipped highlights, up to the
    demosaicing error).

    Args:
        raw: packed ``4 x h x w`` / ``N x 4 x h x w`` (R, G1, G2, B, sampled at the sites of
            the metadata's CFA), a mosaic ``1 x H x W`` / ``N x 1 x H x W``, or camera RGB
            ``3 x H x W`` / ``N x 3 x H x W`` (no demosaicing), linear in [0, 1].
        metadata: what :func:`unprocess` returned (dict or list of dicts), or
            :class:`UnprocessParams` (one for all, or one per image).
        cfa: override the metadata's Bayer pattern.
        brooks: Brooks et al.'s own forward path instead: ``max(x, 1e-8) ** (1 / 2.2)`` and
            **no** tone curve (their ``process.py``, used for the training loss).
        gamma: ``"srgb"`` or ``"2.2"`` (power curve); default the metadata's ``gamma``
            (``"srgb"`` if absent), or ``"2.2"`` with ``brooks``.
        tone: apply the smoothstep tone curve; default ``not brooks``.
        demosaic: the demosaicing algorithm (:data:`isplab.classic.DEMOSAIC_METHODS`);
            bilinear as in Brooks et al. (the classical baseline of ``isplab evaluate``
            uses the others too); or a learned stage called as ``demosaic(mosaic, cfa,
            gains, noise)`` on the white-balanced mosaic (the hybrid ISP's
            :class:`isplab.infer.hybrid.LearnedDemosaic`).
        noise: the raw's noise profile (``shot``/``read``), handed to a learned stage.

    Returns:
        sRGB ``3 x H x W`` / ``N x 3 x H x W`` in [0, 1].
    """
    x, single = _batched(raw, (1, 3, 4), "raw")
    n = x.shape[0]
    plist = _params_list(metadata, n)
    cfas = [check_pattern(cfa)] * n if cfa is not None else [p.cfa for p in plist]
    if gamma is not None and gamma not in GAMMAS:
        raise InvalidInputError(f"gamma must be one of {', '.join(GAMMAS)}, got {gamma!r}")
    gammas = ["2.2"] * n if brooks else ([gamma] * n if gamma else _gamma_of(metadata, n))
    if any(gm not in GAMMAS for gm in gammas):
        raise InvalidInputError(f"unknown gamma in metadata: {sorted(set(gammas))}")
    if tone is None:
        tone = not brooks

    gains = torch.as_tensor(np.array([[p.rgb_gain * v for v in p.wb_gains] for p in plist]),
                            dtype=x.dtype, device=x.device)
    c = x.shape[1]
    if c == 4:
        x = apply_white_balance(x, gains).clamp(0.0, 1.0)
        x = _demosaic_per_image(torch.cat([unpack(x[i:i + 1], cf) for i, cf in enumerate(cfas)]),
                                cfas, demosaic, gains, noise)
    elif c == 1:
        x = torch.cat([apply_white_balance(x[i:i + 1], gains[i:i + 1], cfa=cf)
                       for i, cf in enumerate(cfas)]).clamp(0.0, 1.0)
        x = _demosaic_per_image(x, cfas, demosaic, gains, noise)
    else:
        x = apply_white_balance(x, gains).clamp(0.0, 1.0)
    x = apply_color_matrix(x, _stack([p.cam_to_rgb for p in plist], x)).clamp(0.0, 1.0)
    if all(gm == "srgb" for gm in gammas):
        x = srgb_gamma(x)
    elif all(gm == "2.2" for gm in gammas):
        x = x.clamp(min=1e-8) ** (1.0 / 2.2)
    else:
        x = torch.cat([srgb_gamma(x[i:i + 1]) if gm == "srgb"
                       else x[i:i + 1].clamp(min=1e-8) ** (1.0 / 2.2)
                       for i, gm in enumerate(gammas)])
    if tone:
        x = smoothstep(x)
    return x[0] if single else x
