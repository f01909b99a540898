"""Methods under evaluation, chosen by strings as on the command line.

- ``classic`` / ``classic:<demosaic>``: the classical pipeline with that demosaic (bilinear,
  malvar2004, menon2007, or ``learned``: the hybrid ISP's jdd_net, ``classic:learned=W`` with
  other weights). On ``synthetic-isp`` it is given each image's true white balance and colour
  matrix (what a calibrated camera ISP knows); on ``demosaic`` it is the demosaic alone.
- ``identity``: the input itself (``rgb-pairs``: the noisy photo).
- ``demosaicnet``: Gharbi et al.'s released Bayer model (``bench`` extra).
- ``libraw:ahd`` / ``libraw:aahd`` / ``libraw:dcb`` ...: LibRaw's demosaics through rawpy.
- ``ri``: residual interpolation (pip ``eari-demosaic``, ``pyeari.ri``).
- ``<method>+bm3d`` / ``<method>+bilateral``: that method, then a classical denoiser for the
  protocol's noise profile (BM3D with a generalised Anscombe transform, or isplab's bilateral
  filter); ``bm3d+<method>``: BM3D on the noisy mosaic first (where the noise is still
  white), then the method on the denoised mosaic.
- a zoo name with weights ``name=path.safetensors``, a weights file, or a run directory; a
  bare zoo name runs with random weights and says so.

A method declares the inputs it ``needs`` (keys of a protocol item); the run refuses a
protocol that does not provide them. Add a family: a factory ``(argument, protocol) ->
Method`` registered with ``@METHODS.register(prefix)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isplab.errors import InvalidInputError
from isplab.registry import Registry

log = logging.getLogger("isplab.evaluate")

METHODS: Registry[Callable[..., Method]] = Registry("method")
DENOISERS = ("bm3d", "bilateral")


@dataclass
class Method:
    """A method under evaluation: ``run(item) -> N x 3 x H x W`` in [0, 1]."""

    name: str
    run: Callable[[dict[str, Any]], torch.Tensor]
    needs: frozenset[str] = frozenset()
    note: str = ""
    seconds: float = 0.0
    megapixels: float = 0.0
    parameters: int | None = None
    values: dict[str, list[float]] = field(default_factory=dict)


# --- families ------------------------------------------------------------------------------


@METHODS.register("identity", description="the input itself")
def _identity(arg: str, protocol: str) -> Method:
    return Method("identity", lambda item: item["rgb"], frozenset({"rgb"}),
                  note="the input itself")


@METHODS.register("classic", description="the classical pipeline (classic:<demosaic>)")
def _classic(arg: str, protocol: str) -> Method:
    from isplab.classic import DEMOSAIC_METHODS

    algorithm, _, weights = (arg or "bilinear").partition("=")
    if algorithm not in (*DEMOSAIC_METHODS, "learned"):
        raise InvalidInputError(f"unknown demosaic {algorithm!r}; choose from "
                                f"{', '.join((*DEMOSAIC_METHODS, 'learned'))}")
    demosaicker: Any = algorithm
    note = ""
    if algorithm == "learned":
        from isplab.infer.hybrid import learned_demosaic

        demosaicker = learned_demosaic(weights or None, device="cpu")
        note = f"jdd_net {weights or 'shipped weights'}"
    if protocol == "demosaic":
        from isplab.classic import demosaic

        def run(item: dict[str, Any]) -> torch.Tensor:
            if algorithm == "learned":
                return demosaicker(item["mosaic"], item["cfa"], None, item["noise"])
            return demosaic(item["mosaic"], item["cfa"], algorithm)

        needs = {"mosaic", "noise"} if algorithm == "learned" else {"mosaic"}
        return Method(f"classic:{algorithm}", run, frozenset(needs), note=note)

    from isplab.synth.unprocess import process

    def develop(item: dict[str, Any]) -> torch.Tensor:
        return process(item["packed"], item["metadata"], demosaic=demosaicker,
                       noise=item.get("noise"))

    return Method(f"classic:{algorithm}", develop, frozenset({"packed", "metadata"}),
                  note=", ".join(n for n in ("true WB gains and colour matrix", note) if n))


@METHODS.register("demosaicnet", description="Gharbi et al. 2016, released Bayer weights")
def _demosaicnet(arg: str, protocol: str) -> Method:
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import demosaicnet
    except ImportError as exc:
        raise InvalidInputError("demosaicnet is not installed: pip install -c constraints.txt "
                                "-e '.[bench]'") from exc
    net = demosaicnet.BayerDemosaick(pretrained=True).eval()
    pad = 40  # the network crops 31 px per side (valid convolutions)

    def run(item: dict[str, Any]) -> torch.Tensor:
        if item.get("cfa", "RGGB") != "RGGB":
            raise InvalidInputError("the demosaicnet wrapper expects an RGGB mosaic")
        m = item["mosaic"]
        h, w = m.shape[-2:]
        # demosaicnet's pattern is GRBG: mirror padding keeps the Bayer phase, and an odd
        # left pad turns the RGGB origin into GRBG.
        p = torch.nn.functional.pad(m, (pad + 1, pad - 1, pad, pad), mode="reflect")
        masks = torch.zeros(1, 3, *p.shape[-2:])
        masks[:, 1, 0::2, 0::2] = 1
        masks[:, 0, 0::2, 1::2] = 1
        masks[:, 2, 1::2, 0::2] = 1
        masks[:, 1, 1::2, 1::2] = 1
        out = net(p * masks)
        c = (p.shape[-1] - out.shape[-1]) // 2
        top, left = pad - c, pad + 1 - c
        return out[..., top:top + h, left:left + w].clamp(0, 1)

    return Method("demosaicnet", run, frozenset({"mosaic"}),
                  note="Gharbi et al. 2016, released Bayer weights",
                  parameters=sum(p.numel() for p in net.parameters()))


@METHODS.register("libraw", description="LibRaw's demosaics through rawpy (libraw:ahd, "
                  "libraw:aahd, libraw:dcb, libraw:vng, libraw:ppg, libraw:linear)")
def _libraw(arg: str, protocol: str) -> Method:
    import rawpy

    name = (arg or "ahd").upper()
    algorithm = getattr(rawpy.DemosaicAlgorithm, name, None)
    if algorithm is None:
        raise InvalidInputError(f"unknown LibRaw demosaic {arg!r}")

    def run(item: dict[str, Any]) -> torch.Tensor:
        import tempfile

        from isplab.raw import RawImage
        from isplab.raw.dng import write_dng

        m = item["mosaic"][0, 0].numpy()
        raw = RawImage(m, cfa=item["cfa"], white_level=65535.0, wb_gains=(1.0, 1.0, 1.0))
        with tempfile.TemporaryDirectory() as tmp:
            path = write_dng(Path(tmp) / "mosaic.dng", raw)
            with rawpy.imread(str(path)) as r:
                rgb = r.postprocess(demosaic_algorithm=algorithm, output_color=rawpy.ColorSpace.raw,
                                    gamma=(1, 1), no_auto_bright=True, user_wb=[1, 1, 1, 1],
                                    output_bps=16, user_flip=0, user_black=0,
                                    user_sat=65535)
        return torch.from_numpy(rgb.astype(np.float32) / 65535.0).permute(2, 0, 1)[None]

    return Method(f"libraw:{name.lower()}", run, frozenset({"mosaic"}),
                  note="LibRaw via rawpy (file written as a 16-bit DNG)")


@METHODS.register("ri", description="residual interpolation (pip eari-demosaic)")
def _ri(arg: str, protocol: str) -> Method:
    try:
        import pyeari
    except ImportError as exc:
        raise InvalidInputError("residual interpolation needs eari-demosaic: pip install "
                                "--no-deps eari-demosaic") from exc

    def run(item: dict[str, Any]) -> torch.Tensor:
        m = item["mosaic"][0, 0].numpy().astype(np.float32)
        rgb = pyeari.ri(m, item["cfa"])
        return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]

    return Method("ri", run, frozenset({"mosaic"}), note="Kiku et al. residual interpolation "
                  "(eari-demosaic)")


def _model(spec: str, protocol: str) -> Method:
    from isplab.models import is_registered, model_info, resolve, weights_file

    name, _, weights = spec.partition("=")
    if not is_registered(name) and weights_file(name) is None:
        raise InvalidInputError(f"unknown method {spec!r}: use classic[:demosaic], identity, "
                                "demosaicnet, libraw:ahd, ri, a zoo name (=weights), a "
                                "weights file or a run directory (+bm3d / +bilateral adds a "
                                "denoiser)")
    if is_registered(name) and not weights:
        torch.manual_seed(0)
        log.warning("%s has no weights: evaluating a random initialisation", name)
    model = resolve(name, weights=weights or None, allow_random=True)
    label = name if is_registered(name) else model.isplab_name
    note = f"weights {weights or weights_file(name)}" if weights or not is_registered(name) \
        else "RANDOM weights (none given)"
    model.eval()
    space = model_info(model.isplab_name)["input"]
    params = sum(p.numel() for p in model.parameters())
    if space == "packed_raw_noise":  # jdd_net: a balanced mosaic + its noise map
        from isplab.infer.hybrid import LearnedDemosaic

        stage = LearnedDemosaic(model, device="cpu")
        return Method(label, lambda item: stage(item["mosaic"], item["cfa"], None,
                                                item["noise"]),
                      frozenset({"mosaic", "noise"}), note=note, parameters=params)
    key = "rgb" if space in ("srgb", "linear_rgb") else "packed"

    def run(item: dict[str, Any]) -> torch.Tensor:
        return model(item[key]).clamp(0, 1)

    return Method(label, run, frozenset({key}), note=note, parameters=params)


# --- denoisers after a method --------------------------------------------------------------


def gat(x: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Generalised Anscombe transform: data with variance ``shot * x + read`` to unit
    variance (Makitalo & Foi 2013, with ``alpha = shot``, ``sigma^2 = read``)."""
    if shot <= 0:
        return x / np.sqrt(max(read, 1e-12))
    return (2.0 / shot) * np.sqrt(np.maximum(shot * x + 0.375 * shot * shot + read, 0.0))


def inverse_gat(y: np.ndarray, shot: float, read: float) -> np.ndarray:
    """The inverse of :func:`gat` for a denoised ``y``: the closed-form approximation of the
    exact unbiased inverse (Makitalo & Foi 2011, 2013), not the algebraic one, which is
    biased where the signal is a few photons."""
    if shot <= 0:
        return y * np.sqrt(max(read, 1e-12))
    d = np.maximum(y, 0.8)  # the approximation holds above ~0.8 (its photon-free limit)
    r = np.sqrt(1.5)
    photons = (0.25 * d * d + 0.25 * r / d - 1.375 / d ** 2 + 0.625 * r / d ** 3 - 0.125
               - read / (shot * shot))
    return shot * photons


# an orthonormal 4 x 4 transform of the packed channels: channel 0 is their mean (x 2), on
# which bm3d matches blocks; white unit-variance noise stays white and unit-variance
_HADAMARD = 0.5 * np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]],
                           dtype=np.float64)


def bm3d_mosaic(mosaic: torch.Tensor, cfa: str, shot: float, read: float) -> torch.Tensor:
    """BM3D on a Bayer mosaic ``1 x 1 x H x W`` (even H, W) with shot/read noise, before any
    demosaic: the four packed planes, variance-stabilised (:func:`gat`), decorrelated by an
    orthonormal transform and denoised together (blocks matched on their mean), then back.
    The noise is still white here, as BM3D and the transform assume."""
    from isplab.raw.cfa import pack, unpack

    bm3d = _bm3d()
    planes = pack(mosaic, cfa)[0].permute(1, 2, 0).double().numpy()
    z = bm3d.bm3d(gat(planes, shot, read) @ _HADAMARD.T, 1.0)
    out = inverse_gat(np.asarray(z) @ _HADAMARD, shot, read)
    packed = torch.from_numpy(np.clip(out, 0, 1).astype(np.float32)).permute(2, 0, 1)[None]
    return unpack(packed, cfa)


def _bm3d():
    """The bm3d package, or one line saying how to install it."""
    try:
        import bm3d
    except ImportError as exc:
        raise InvalidInputError("the bm3d peer needs the bm3d package: pip install "
                                "bm3d") from exc
    return bm3d


def denoise_after(method: Method, denoiser: str) -> Method:
    """``method`` followed by a classical denoiser set by the item's noise profile."""
    if denoiser not in DENOISERS:
        raise InvalidInputError(f"unknown denoiser {denoiser!r}; choose from "
                                f"{', '.join(DENOISERS)}")
    bm3d = _bm3d() if denoiser == "bm3d" else None

    def run(item: dict[str, Any]) -> torch.Tensor:
        rgb = method.run(item)
        noise = item["noise"]
        if noise.shot == 0 and noise.read == 0:
            return rgb
        if denoiser == "bilateral":
            from isplab.classic.denoising import denoise

            level = noise.std_at(float(rgb.mean()))
            return denoise(rgb, 2.0 * level).clamp(0, 1)
        x = rgb[0].permute(1, 2, 0).numpy().astype(np.float64)
        y = gat(x, noise.shot, noise.read)
        z = bm3d.bm3d_rgb(y, 1.0)
        out = inverse_gat(np.asarray(z), noise.shot, noise.read)
        return torch.from_numpy(np.clip(out, 0, 1).astype(np.float32)).permute(2, 0, 1)[None]

    note = "BM3D (generalised Anscombe)" if denoiser == "bm3d" else "bilateral (2 x noise std)"
    return Method(f"{method.name}+{denoiser}", run, method.needs | {"noise"},
                  note=", ".join(n for n in (method.note, note) if n),
                  parameters=method.parameters)


def denoise_before(method: Method, denoiser: str) -> Method:
    """A denoiser on the noisy mosaic, then ``method`` on the denoised one (``bm3d`` only:
    :func:`bm3d_mosaic`)."""
    if denoiser != "bm3d":
        raise InvalidInputError(f"only bm3d denoises the mosaic before a method, not "
                                f"{denoiser!r} (write <method>+{denoiser} to denoise after)")
    if method.needs != {"mosaic"}:
        raise InvalidInputError(f"bm3d+{method.name}: BM3D goes before a method that takes "
                                "the mosaic alone (a demosaic)")
    _bm3d()

    def run(item: dict[str, Any]) -> torch.Tensor:
        noise = item["noise"]
        if noise.shot == 0 and noise.read == 0:
            return method.run(item)
        clean = bm3d_mosaic(item["mosaic"], item["cfa"], noise.shot, noise.read)
        return method.run({**item, "mosaic": clean})

    note = "BM3D on the mosaic (generalised Anscombe, 4 packed planes)"
    return Method(f"bm3d+{method.name}", run, method.needs | {"noise"},
                  note=", ".join(n for n in (note, method.note) if n),
                  parameters=method.parameters)


def resolve_method(spec: str, protocol: str) -> Method:
    """A method from its command-line string (see the module docstring)."""
    base, plus, rest = spec.partition("+")
    if plus and base in DENOISERS:
        return denoise_before(resolve_method(rest, protocol), base)
    denoiser = rest
    family, _, arg = base.partition(":")
    if family in METHODS and "=" not in family:
        method = METHODS.get(family)(arg, protocol)
    else:
        method = _model(base, protocol)
    return denoise_after(method, denoiser) if plus else method
