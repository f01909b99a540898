"""MDIE's domain datasets from real photos, and the real evaluation pairs.

Training data (:class:`DomainDataset`) comes only from the training photos
(``wikipedia_photos49``, ``cbsd68``), degraded with :mod:`isplab.synth.degradations`. Real pairs
are for evaluation only: SIDD (noise), City100 (texture), INTEL-TAU (colour cast with its
ground-truth illuminant) (:func:`sidd_pairs`, :func:`city100_pairs`,
:func:`intel_tau_samples`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from isplab.data.datasets import (
    _Base,
    _check_patch,
    data_root,
    default_synthetic_folders,
    list_images,
    read_rgb_array,
    split_files,
    to_float,
)
from isplab.data.rgb_pairs import RGBPairDataset
from isplab.errors import InvalidInputError
from isplab.synth.degradations import (
    DOMAINS,
    degrade,
)


def training_photos(folders: Sequence[str | Path] | None = None) -> list[Path]:
    """Image files of ``folders`` (default: ``wikipedia_photos49`` and ``cbsd68``)."""
    if folders is None:
        folders = default_synthetic_folders()
    files: list[Path] = []
    for f in folders:
        files += list_images(f)
    if not files:
        raise InvalidInputError("no training photos found", Path(folders[0]))
    return files


class DomainDataset(_Base):
    """Patches of real photos, each degraded in one domain or left clean (StarGAN / MDIE).

    Each item picks, from its own random stream (:func:`isplab.data.patches.item_generator`
    of ``(seed, epoch, index)``), one domain and whether it is degraded (probability
    ``lq_probability``), so batches mix the three domains and both qualities.

    Item: ``image`` (``3 x P x P`` sRGB, degraded when low quality), ``clean`` (the same
    patch undegraded), ``labels`` (3: 1 at the domain when high quality, else 0), ``mask``
    (3: one-hot domain, StarGAN's dataset mask), ``domain`` (int), ``lq`` (bool), ``name``,
    ``params`` (the degradation parameters as JSON).

    Args:
        folders: folders of clean photos (default: ``wikipedia_photos49`` + ``cbsd68``).
        patch: patch side in pixels (even; photos smaller than that are upscaled to fit).
        domains: the domains sampled (a subset of :data:`DOMAINS`; labels keep 3 slots).
        max_side: photos are downscaled (area) so the longer side is at most this, which
            keeps the cache small and makes a patch cover more of the scene (None: keep).
        split, val_fraction: train/val split by file (``isplab.data.datasets.split_files``).
    """

    def __init__(self, folders: Sequence[str | Path] | str | Path | None = None,
                 patch: int = 64, domains: Sequence[str] = DOMAINS,
                 lq_probability: float = 0.5, max_side: int | None = 512,
                 augment: bool = True, patches_per_image: int = 1, seed: int = 0,
                 split: str = "all", val_fraction: float = 0.1, cache: bool = False,
                 cache_mb: float = 512) -> None:
        super().__init__(seed, cache, cache_mb, patches_per_image, split)
        unknown = set(domains) - set(DOMAINS)
        if unknown or not domains:
            raise InvalidInputError(f"domains must be a non-empty subset of {DOMAINS}, got "
                                    f"{list(domains)}")
        if not 0.0 <= float(lq_probability) <= 1.0:
            raise InvalidInputError(f"lq_probability must be in [0, 1], got {lq_probability}")
        self.patch = _check_patch(patch)
        self.domains = tuple(DOMAINS.index(d) for d in domains)
        self.lq_probability = float(lq_probability)
        self.max_side = max_side
        self.augment = bool(augment) and split != "val"
        files = training_photos(None if folders is None else
                                ([folders] if isinstance(folders, (str, Path)) else folders))
        self.files = split_files(files, split, val_fraction)
        if not self.files:
            raise InvalidInputError(f"no photos in the {split!r} split", files[0].parent)

    def _n_sources(self) -> int:
        return len(self.files)

    def photo(self, i: int) -> np.ndarray:
        """Photo ``i`` as ``H x W x 3`` (downscaled to ``max_side``; cached when asked)."""
        def load(path: Path) -> np.ndarray:
            arr = read_rgb_array(path)
            h, w = arr.shape[:2]
            if self.max_side and max(h, w) > self.max_side:
                s = self.max_side / max(h, w)
                arr = cv2.resize(arr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            return arr

        return self._store.get(self.files[i], load)

    def item(self, photo: int, domain: int, lq: bool, generator: torch.Generator
             ) -> dict[str, Any]:
        """One sample of photo ``photo`` in ``domain`` (an index into :data:`DOMAINS`)."""
        img = to_float(self.photo(photo))
        p = self.patch
        h, w = img.shape[-2:]
        if min(h, w) < p:
            s = p / min(h, w)
            img = F.interpolate(img[None], size=(max(p, round(h * s)), max(p, round(w * s))),
                                mode="bilinear", align_corners=False)[0]
            h, w = img.shape[-2:]
        y = int(torch.randint(0, h - p + 1, (1,), generator=generator))
        x = int(torch.randint(0, w - p + 1, (1,), generator=generator))
        crop = img[:, y:y + p, x:x + p]
        if self.augment and bool(torch.rand(1, generator=generator) < 0.5):
            crop = crop.flip(-1)
        clean = crop.contiguous().float()
        image, params = clean, {}
        if lq:
            image, params = degrade(clean, DOMAINS[domain], generator)
        labels, mask = torch.zeros(3), torch.zeros(3)
        mask[domain] = 1.0
        labels[domain] = 0.0 if lq else 1.0
        return {"image": image.contiguous().float().clamp(0, 1), "clean": clean,
                "labels": labels, "mask": mask, "domain": domain, "lq": bool(lq),
                "name": self.files[photo].stem, "params": json.dumps(params)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        photo = self._source(index)
        g = self.generator(index)
        domain = self.domains[int(torch.randint(0, len(self.domains), (1,), generator=g))]
        lq = bool(torch.rand(1, generator=g) < self.lq_probability)
        return self.item(photo, domain, lq, g)


# --- real evaluation pairs ----------------------------------------------------------------


def _pairs(root: Path, layout: str, limit: int | None, max_side: int | None
           ) -> list[dict[str, Any]]:
    ds = RGBPairDataset(root, layout=layout)
    out = []
    for i in range(len(ds) if limit is None else min(limit, len(ds))):
        it = ds[i]
        a, b = it["input"], it["target"]
        if max_side and max(a.shape[-2:]) > max_side:  # centre crop keeps the real texture
            h, w = a.shape[-2:]
            ch, cw = min(h, max_side), min(w, max_side)
            y, x = (h - ch) // 2, (w - cw) // 2
            a, b = a[:, y:y + ch, x:x + cw], b[:, y:y + ch, x:x + cw]
        out.append({"name": it["name"], "input": a, "target": b})
    return out


def sidd_pairs(root: str | Path | None = None, limit: int | None = None,
               max_side: int | None = None) -> list[dict[str, Any]]:
    """SIDD noisy/clean sRGB pairs (evaluation only): ``[{"name", "input", "target"}]``
    with ``3 x H x W`` tensors; ``max_side`` centre-crops larger images."""
    root = Path(root) if root else data_root() / "sidd_srgb_pairs"
    return _pairs(root, "sidd", limit, max_side)


def city100_pairs(root: str | Path | None = None, limit: int | None = None,
                  max_side: int | None = None) -> list[dict[str, Any]]:
    """City100 iPhone X short/long focal pairs (evaluation only), as :func:`sidd_pairs`."""
    root = Path(root) if root else data_root() / "city100_iphonex_lr_hr_pairs"
    return _pairs(root, "city100", limit, max_side)


def intel_tau_samples(root: str | Path | None = None) -> list[dict[str, Any]]:
    """INTEL-TAU samples (evaluation only): ``[{"name", "camera_rgb": 3 x H x W linear camera
    RGB scaled so its maximum is 1 (not white balanced), "illuminant": 3 (unit norm)}]``."""
    root = Path(root) if root else data_root() / "intel_tau_imx135_awb_samples"
    out = []
    for f in sorted(root.glob("*.png")):
        meta = f.with_name(f.stem + "_metadata.json")
        if not meta.exists():
            raise InvalidInputError("INTEL-TAU image without its _metadata.json", f)
        try:
            ill = torch.tensor(json.loads(meta.read_text())["illuminant_color_raw"],
                               dtype=torch.float32)
        except (KeyError, ValueError) as exc:
            raise InvalidInputError(f"no illuminant_color_raw ({exc})", meta) from exc
        rgb = to_float(read_rgb_array(f))
        rgb = rgb / rgb.amax().clamp(min=1e-6)
        out.append({"name": f.stem, "camera_rgb": rgb, "illuminant": ill / ill.norm()})
    if not out:
        raise InvalidInputError("no INTEL-TAU images found", root)
    return out
