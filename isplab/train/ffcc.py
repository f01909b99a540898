"""Training the learned illuminant estimator (:mod:`isplab.classic.ffcc`) on synthetic casts.

No evaluation image is used: the training photos (``wikipedia_photos49``, ``cbsd68``,
``bsds500_train_test``, ``div2k_crops256``; 617 photos) are decoded to linear sRGB and
rendered by sampled cameras under sampled illuminants (:mod:`isplab.synth.illuminants`),
several casts per photo. A tenth of the photos (by a hash of the file name) is held out: a model is
fitted on the other photos' casts for each pair of regularisation weights, and the one with the
lowest mean angular error on the held-out casts is kept.

The model is fitted as FFCC is: full batch, L-BFGS, the loss the angular error of the
soft-argmax estimate, plus total-variation and L2 penalties on the filters and bias map.
``benchmarks/train_awb.py`` is the one command that runs all of it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isplab.classic.ffcc import FFCCConfig, FFCCModel, features
from isplab.errors import InvalidInputError

log = logging.getLogger(__name__)

PHOTO_FOLDERS = ("wikipedia_photos49", "cbsd68", "bsds500_train_test", "div2k_crops256")
#: the photos whose own white balance is credible enough to be the ground truth: the BSDS
#: photos (bsds500_train_test, cbsd68: Corel stock) carry strong casts -- gray world is 11 deg
#: from their neutral in linear sRGB, against 7.5 for wikipedia_photos49 (white patch 10.3
#: against 3.4) -- and would teach the model the casts of those photos, not of scenes
AWB_FOLDERS = ("wikipedia_photos49", "div2k_crops256")
_SUFFIXES = {".png", ".jpg", ".jpeg"}


def training_photos(data_root: str | Path, folders: Sequence[str] = AWB_FOLDERS) -> list[Path]:
    """The training photos of ``folders`` under ``data_root`` (``../shared/data``), sorted."""
    root = Path(data_root)
    paths = sorted(p for f in folders if (root / f).is_dir()
                   for p in (root / f).iterdir() if p.suffix.lower() in _SUFFIXES)
    if not paths:
        raise InvalidInputError(f"no training photos in {', '.join(folders)}", root)
    return paths


def is_validation(path: Path, fraction: float = 0.1) -> bool:
    """Whether a photo is held out: a hash of ``folder/name``, the same on every machine."""
    key = f"{path.parent.name}/{path.name}".encode()
    h = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return (h % 10_000) < fraction * 10_000


@dataclass
class Samples:
    """Featurised casts: histograms ``N x C x n x n``, gray-world chroma ``N x 2``, true
    illuminants ``N x 3`` (``g = 1``), and other estimators' estimates (name -> ``N x 3``)."""

    hists: np.ndarray
    centers: np.ndarray
    truth: np.ndarray
    baselines: dict[str, np.ndarray]

    def save(self, path: str | Path) -> None:
        np.savez(path, hists=self.hists, centers=self.centers, truth=self.truth,
                 **{f"baseline_{k}": v for k, v in self.baselines.items()})

    @classmethod
    def load(cls, path: str | Path) -> Samples:
        with np.load(path) as z:
            base = {k[9:]: z[k] for k in z.files if k.startswith("baseline_")}
            return cls(z["hists"], z["centers"], z["truth"], base)


def _linear_photo(path: Path, max_side: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of the photo, resized to ``max_side`` at most, as linear sRGB."""
    import cv2
    import torch

    from isplab.synth.unprocess import decode_srgb

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InvalidInputError("not a readable photo", path)
    h, w = bgr.shape[:2]
    s = rng.uniform(0.6, 1.0)
    ch, cw = max(8, int(h * s)), max(8, int(w * s))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = bgr[y:y + ch, x:x + cw, ::-1]
    f = max_side / max(ch, cw)
    if f < 1:
        crop = cv2.resize(np.ascontiguousarray(crop), (int(cw * f), int(ch * f)),
                          interpolation=cv2.INTER_AREA)
    t = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None]
    return decode_srgb(t)[0].permute(1, 2, 0).numpy()


def _render(lin: np.ndarray, rng: np.random.Generator, kind: str
            ) -> tuple[np.ndarray, np.ndarray]:
    """One cast of linear sRGB: ``spectral`` (:mod:`isplab.synth.spectral`: reflectances,
    illuminant spectra, camera sensitivities) or ``kries`` (a camera matrix and a von Kries
    cast in camera RGB, :mod:`isplab.synth.illuminants`). Returns ``(camera RGB, truth)``."""
    from isplab.synth.illuminants import render_cast, sample_camera, sample_illuminant_xy
    from isplab.synth.spectral import render_spectral

    if kind == "spectral":
        cam, light, _ = render_spectral(lin, rng)
        return cam, light
    if kind != "kries":
        raise InvalidInputError(f"unknown cast kind {kind!r}: spectral or kries")
    camera = sample_camera(rng)
    xy, _ = sample_illuminant_xy(rng)
    light = camera.illuminant(xy)
    return render_cast(lin, camera, light, rng), light


def make_samples(paths: Sequence[Path], casts: int, seed: int, config: FFCCConfig,
                 max_side: int = 384, estimators: dict | None = None, kind: str = "spectral"
                 ) -> Samples:
    """``casts`` renders per photo (a crop, a light, a camera, exposure and noise: ``kind``
    as :func:`_render`), featurised; ``estimators`` (name -> function of camera RGB) are run
    on each render too."""

    rng = np.random.default_rng(seed)
    estimators = estimators or {}
    hists, centers, truth = [], [], []
    base: dict[str, list] = {k: [] for k in estimators}
    for path in paths:
        for _ in range(casts):
            lin = _linear_photo(path, max_side, rng)
            cam, light = _render(lin, rng, kind)
            h, c = features(cam, config)
            hists.append(h)
            centers.append(c)
            truth.append(light)
            for k, fn in estimators.items():
                base[k].append(fn(cam))
    return Samples(np.stack(hists), np.stack(centers), np.stack(truth),
                   {k: np.stack(v) for k, v in base.items()})


# --------------------------------------------------------------------------- fitting


def _torch_forward(hf, centers, filters, bias, coords):
    """Soft-argmax illuminant ``N x 3`` from precomputed histogram spectra ``hf``."""
    import torch

    n = bias.shape[-1]
    spec = (hf * torch.fft.rfft2(filters)[None]).sum(dim=1)
    logits = torch.fft.irfft2(spec, s=(n, n)) + bias
    p = torch.softmax(logits.reshape(len(hf), -1), dim=1).reshape(-1, n, n)
    du = (p.sum(dim=2) * coords).sum(dim=1)
    dv = (p.sum(dim=1) * coords).sum(dim=1)
    u, v = centers[:, 0] + du, centers[:, 1] + dv
    return torch.stack([torch.exp(-u), torch.ones_like(u), torch.exp(-v)], dim=1)


def angular_errors_torch(est, truth):
    """Angles in degrees between rows of ``est`` and ``truth`` (differentiable)."""
    import torch

    c = (est * truth).sum(1) / (est.norm(dim=1) * truth.norm(dim=1))
    return torch.rad2deg(torch.acos(c.clamp(-1 + 1e-7, 1 - 1e-7)))


def _tv(x):
    """Squared differences between neighbouring bins, on the torus (FFCC's smoothness)."""
    import torch

    return ((x - torch.roll(x, 1, -1)) ** 2).sum() + ((x - torch.roll(x, 1, -2)) ** 2).sum()


def fit(samples: Samples, config: FFCCConfig, tv: float, l2: float, iterations: int = 200
        ) -> FFCCModel:
    """Fit filters and bias to ``samples`` (L-BFGS, full batch, float32); returns the model."""
    import torch

    hf = torch.fft.rfft2(torch.from_numpy(samples.hists).float())
    centers = torch.from_numpy(samples.centers).float()
    truth = torch.from_numpy(samples.truth).float()
    coords = torch.from_numpy(config.coords()).float()
    n, c = config.bins, len(config.channels)
    filters = torch.zeros(c, n, n, requires_grad=True)
    bias = torch.zeros(n, n, requires_grad=True)
    opt = torch.optim.LBFGS([filters, bias], lr=1.0, max_iter=iterations,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        est = _torch_forward(hf, centers, filters, bias, coords)
        loss = angular_errors_torch(est, truth).mean()
        loss = loss + tv * (_tv(filters) + _tv(bias)) + l2 * (filters.square().sum()
                                                               + bias.square().sum())
        loss.backward()
        return loss

    opt.step(closure)
    return FFCCModel(config, filters.detach().double().numpy(), bias.detach().double().numpy())


def errors(model: FFCCModel, samples: Samples) -> np.ndarray:
    """Angular errors (degrees) of ``model`` on featurised ``samples``."""
    import torch

    with torch.no_grad():
        est = _torch_forward(torch.fft.rfft2(torch.from_numpy(samples.hists).double()),
                             torch.from_numpy(samples.centers).double(),
                             torch.from_numpy(model.filters).double(),
                             torch.from_numpy(model.bias).double(),
                             torch.from_numpy(model.config.coords()))
        return angular_errors_torch(est, torch.from_numpy(samples.truth).double()).numpy()


def select(train: Samples, val: Samples, config: FFCCConfig, grid: Sequence[tuple[float, float]],
           iterations: int = 200) -> tuple[FFCCModel, tuple[float, float], list[dict]]:
    """Fit each ``(tv, l2)`` of ``grid`` on ``train``, measure on ``val``: the best model
    (lowest mean angular error), its pair, and a row per pair."""
    from isplab.classic.illuminant import error_summary

    rows, best = [], None
    for tv, l2 in grid:
        t0 = time.perf_counter()
        model = fit(train, config, tv, l2, iterations)
        s = error_summary(errors(model, val))
        rows.append({"tv": tv, "l2": l2, **s, "seconds": round(time.perf_counter() - t0, 1)})
        log.info("tv %g l2 %g: val mean %.3f median %.3f", tv, l2, s["mean"], s["median"])
        if best is None or s["mean"] < best[0]:
            best = (s["mean"], model, (tv, l2))
    assert best is not None
    return best[1], best[2], rows
