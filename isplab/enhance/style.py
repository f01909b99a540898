"""Semantic photorealistic style transfer (Deep Photo Style Transfer, Luan et al. CVPR 2017).

The output image ``x`` (sRGB in [0, 1], initialised with the content image) minimises

    E(x) = w_c E_content + w_s E_style + w_tv E_tv [+ w_m E_matting in stage 2]

- ``E_content``: mean squared difference of VGG-19 ``relu4_2`` features of ``x`` and content.
- ``E_style``: per semantic region ``r`` and layer ``l`` in relu1_1..relu5_1,
  ``lambda_r^l * mean_CxC (G_r^l(x) - G_r^l(ref))^2`` with the masked Gram
  ``G_r^l = (F m_r)(F m_r)^T / (C H W mean(m_r))``. Masks follow the network: a 3 x 3
  stride-1 average pool at every conv, a resize to the feature size at every max-pool.
  ``region_weights="uniform"``: ``lambda_r = mean(m_r^content)`` (DPST);
  ``"adaptive"`` (seed MPSE, whose lambda is undefined — our definition): per layer,
  ``lambda_r = R * softmax_r(gap_r) * mean(m_r^content)`` with the detached normalised Gram gap
  ``gap_r = |G_r(x) - G_r(ref)|_F^2 / |G_r(ref)|_F^2``, computed at the start of each stage
  (held fixed within a stage so that L-BFGS sees one objective); equal gaps give ``uniform``.
- ``E_tv``: sum of squared differences of neighbouring pixels.
- ``E_matting``: ``sum_c V_c^T L V_c`` with Levin's matting Laplacian of the content image
  (:mod:`isplab.enhance.matting`), gradient by autograd through ``torch.sparse.mm``.

Two stages of L-BFGS (``torch.optim.LBFGS``, strong-Wolfe line search) on the image: stage 1
without the matting term, stage 2 from stage 1's result with it. Default weights are those
of the PyTorch port for [0, 1] inputs (content 100, style 1e6, TV 1e-4, realism 1): they
assume ImageNet VGG-19 weights; a random VGG (tests) needs other weights.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from isplab.checks import check_image
from isplab.enhance.matting import MATTING_EPS, matting_energy, matting_laplacian
from isplab.enhance.segment import Segmentation, co_segment, global_segmentation
from isplab.errors import InvalidInputError

log = logging.getLogger(__name__)

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: PyTorch-port weights for sRGB in [0, 1] with ImageNet VGG-19.
CONTENT_WEIGHT = 100.0
STYLE_WEIGHT = 1e6
TV_WEIGHT = 1e-4
MATTING_WEIGHT = 1.0
#: L-BFGS iterations per stage (the seed runs 1000 + 1000; CPU-friendly default here).
ITERATIONS = (200, 200)


@dataclass
class StyleReport:
    """What :func:`style_transfer` did and measured.

    ``stages``: per stage ``{stage, iterations, evaluations, seconds, initial, final}`` with
    the weighted loss terms; ``ssim_luminance``: SSIM of L*/100 of result vs content;
    ``regions``: per region name, areas and Lab mean/std distance to the reference before
    (content) and after (result); ``matting_energy``: ``sum_c V^T L V`` of content and
    result (and per pixel); ``region_weights``: lambda per stage, layer, region.
    """

    regions_method: str
    region_names: list[str]
    stages: list[dict] = field(default_factory=list)
    ssim_luminance: float = float("nan")
    regions: list[dict] = field(default_factory=list)
    matting_energy: dict = field(default_factory=dict)
    region_weights: list[dict] = field(default_factory=list)
    vgg: str = ""

    @property
    def color_distance_before(self) -> float:
        """Area-weighted mean Lab distance to the reference over regions, content image."""
        return _area_mean(self.regions, "distance_before")

    @property
    def color_distance_after(self) -> float:
        return _area_mean(self.regions, "distance_after")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["color_distance_before"] = self.color_distance_before
        d["color_distance_after"] = self.color_distance_after
        return d


def _area_mean(regions: list[dict], key: str) -> float:
    total = sum(r["area_content"] for r in regions)
    if not regions or total <= 0:
        return float("nan")
    return sum(r[key] * r["area_content"] for r in regions) / total


# --------------------------------------------------------------------------- VGG + masks


def resolve_vgg(vgg=None, random_init: bool = False):
    """A frozen VGG-19 :class:`isplab.backbones.Backbone`: ``vgg`` may be one already, a
    checkpoint path, or None (torchvision's ``vgg19-dcbb9e9d.pth`` searched in
    ``$ISPLAB_WEIGHTS_DIR`` and the torch hub cache). Missing weights raise the backbone's
    IsplabError naming the file; ``random_init=True`` gives a random VGG (tests only)."""
    from isplab.backbones import Backbone, load_backbone

    if isinstance(vgg, Backbone):
        return vgg
    if vgg is not None and not isinstance(vgg, (str, Path)):
        raise InvalidInputError(f"vgg must be a Backbone, a weights path or None, "
                                f"got {type(vgg).__name__}")
    if random_init:
        log.warning("style transfer with a RANDOM VGG-19 (random_init=True): not perceptual")
    return load_backbone("vgg19", weights=vgg, random_init=random_init)


def vgg_features_with_masks(backbone, image: torch.Tensor, layers: Sequence[str],
                            masks: torch.Tensor | None = None
                            ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """VGG features of ``image`` (``1 x 3 x H x W`` sRGB in [0, 1], ImageNet-normalised
    here) at ``layers``, and ``masks`` (``1 x R x H x W``) carried through the network as in
    DPST: 3 x 3 stride-1 average pool at each conv, resize (bilinear) to the new feature
    size at each max-pool. Returns ``(features, masks)`` dicts keyed by layer."""
    wanted = {backbone.layer_names[n]: n for n in layers}
    x = (image - backbone.mean) / backbone.std
    m = masks
    feats: dict[str, torch.Tensor] = {}
    mks: dict[str, torch.Tensor] = {}
    for i, module in enumerate(backbone.features):
        x = module(x)
        if m is not None:
            if isinstance(module, nn.Conv2d):
                m = F.avg_pool2d(m, 3, stride=1, padding=1, count_include_pad=False)
            elif isinstance(module, nn.MaxPool2d):
                m = F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if i in wanted:
            feats[wanted[i]] = x
            if m is not None:
                mks[wanted[i]] = m
            if len(feats) == len(wanted):
                break
    return feats, mks


def masked_gram(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """DPST's region Gram ``(F m)(F m)^T / (C H W mean(m))`` of ``1 x C x H x W`` features
    and a ``1 x 1 x H x W`` mask (None = whole image) -> ``C x C``."""
    _, c, h, w = features.shape
    f = features if mask is None else features * mask
    f = f.reshape(c, h * w)
    area = 1.0 if mask is None else float(mask.mean())
    return (f @ f.t()) / (c * h * w * max(area, 1e-8))


# --------------------------------------------------------------------------- statistics


def region_lab_stats(srgb: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-region CIELAB mean and std: ``R x 6`` (mean L, a, b, std L, a, b) of a
    ``1 x 3 x H x W`` sRGB image in [0, 1] with ``1 x R x H x W`` masks (weights)."""
    from kornia.color import rgb_to_lab

    lab = rgb_to_lab(srgb.clamp(0, 1))[0].reshape(3, -1)         # 3 x P
    m = masks[0].reshape(masks.shape[1], -1).to(lab)              # R x P
    wsum = m.sum(1, keepdim=True).clamp_min(1e-8)
    mean = (m @ lab.t()) / wsum                                   # R x 3
    var = (m @ (lab.t() ** 2)) / wsum - mean ** 2
    return torch.cat([mean, var.clamp_min(0).sqrt()], dim=1)


def region_color_distance(image: torch.Tensor, masks: torch.Tensor, reference: torch.Tensor,
                          reference_masks: torch.Tensor) -> torch.Tensor:
    """Per region, ``|mean_Lab(image) - mean_Lab(ref)| + |std_Lab(image) - std_Lab(ref)|``
    (Euclidean norms in CIELAB units) -> ``R`` distances."""
    a = region_lab_stats(image, masks)
    b = region_lab_stats(reference, reference_masks)
    return (a[:, :3] - b[:, :3]).norm(dim=1) + (a[:, 3:] - b[:, 3:]).norm(dim=1)


def luminance_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """SSIM (isplab.metrics) of CIELAB L*/100 of two ``1 x 3 x H x W`` sRGB images."""
    from kornia.color import rgb_to_lab

    from isplab.metrics import ssim

    lx = rgb_to_lab(x.clamp(0, 1))[:, :1] / 100.0
    ly = rgb_to_lab(y.clamp(0, 1))[:, :1] / 100.0
    return float(ssim(lx, ly)[0])


def tv_energy(x: torch.Tensor) -> torch.Tensor:
    """Sum of squared differences of vertically and horizontally neighbouring pixels."""
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum() + \
        (x[..., :, 1:] - x[..., :, :-1]).pow(2).sum()


# --------------------------------------------------------------------------- main


def _check_image(x: torch.Tensor, name: str) -> None:
    check_image(x, 3, name, finite=True, batch=1)
    if min(x.shape[-2:]) < 16:
        raise InvalidInputError(f"{name} must be at least 16 x 16 pixels (VGG relu5_1), "
                                f"got {tuple(x.shape[-2:])}")


def _resolve_masks(masks, content, reference, segments_k: int, seed: int) -> Segmentation:
    if masks is None:
        return co_segment(content, reference, k=segments_k, seed=seed)
    if isinstance(masks, str) and masks == "global":
        return global_segmentation(content, reference)
    if isinstance(masks, Segmentation):
        seg = masks
    elif isinstance(masks, (tuple, list)) and len(masks) == 2:
        cm, rm = masks
        r = cm.shape[1]
        seg = Segmentation(cm, rm, [f"region{i}" for i in range(r)], "user")
    else:
        raise InvalidInputError("masks must be None (automatic), 'global', a Segmentation or "
                                "a (content_masks, reference_masks) pair")
    cm, rm = seg.content_masks, seg.reference_masks
    for m, img, name in ((cm, content, "content masks"), (rm, reference, "reference masks")):
        if m.ndim != 4 or m.shape[0] != 1 or m.shape[-2:] != img.shape[-2:]:
            raise InvalidInputError(f"{name} must be 1 x R x H x W matching the image "
                                    f"{tuple(img.shape[-2:])}, got {tuple(m.shape)}")
    if cm.shape[1] != rm.shape[1]:
        raise InvalidInputError(f"content masks have {cm.shape[1]} regions, reference masks "
                                f"{rm.shape[1]}")
    return seg


def _check_options(region_weights: str, iterations: Sequence[int],
                   weights: dict[str, float]) -> tuple[int, ...]:
    """Validate the options of :func:`style_transfer`; returns the two iteration counts."""
    if region_weights not in ("adaptive", "uniform"):
        raise InvalidInputError(f"region_weights must be 'adaptive' or 'uniform', "
                                f"got {region_weights!r}")
    its = tuple(int(i) for i in iterations)
    if len(its) != 2 or min(its) < 0:
        raise InvalidInputError(f"iterations must be two counts >= 0, got {iterations!r}")
    for name, v in weights.items():
        if not (math.isfinite(v) and v >= 0):
            raise InvalidInputError(f"{name} must be finite and >= 0, got {v!r}")
    return its


@dataclass
class _Objective:
    """The energy ``E(x)`` of one style transfer (module doc): the VGG, the content masks,
    the fixed targets (content features, reference region Grams, content region areas,
    matting Laplacian or None) and the term weights."""

    backbone: Any
    cmask: torch.Tensor
    style_layers: tuple[str, ...]
    content_layer: str
    region_weights: str
    content_weight: float
    style_weight: float
    tv_weight: float
    matting_weight: float
    content_target: torch.Tensor
    style_grams: dict[str, list[torch.Tensor]]
    areas: torch.Tensor
    laplacian: torch.Tensor | None

    @property
    def regions(self) -> int:
        return self.cmask.shape[1]

    @property
    def all_layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.style_layers, self.content_layer)))

    def lambdas(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Region weights ``lambda_r`` per style layer at ``x`` (module doc), detached."""
        regions = self.regions
        if self.region_weights == "uniform" or regions == 1:
            return {layer: self.areas.clone() for layer in self.style_layers}
        with torch.no_grad():
            fx, mx = vgg_features_with_masks(self.backbone, x, self.style_layers, self.cmask)
            out = {}
            for layer in self.style_layers:
                grams = self.style_grams[layer]
                gaps = torch.stack([
                    (masked_gram(fx[layer], mx[layer][:, r : r + 1]) - grams[r]
                     ).pow(2).sum() / grams[r].pow(2).sum().clamp_min(1e-20)
                    for r in range(regions)])
                out[layer] = regions * torch.softmax(gaps, 0) * self.areas
            return out

    def terms(self, x: torch.Tensor, lam: dict[str, torch.Tensor], with_matting: bool
              ) -> dict[str, torch.Tensor]:
        """The weighted terms of ``E(x)`` with region weights ``lam``."""
        feats, mks = vgg_features_with_masks(self.backbone, x, self.all_layers, self.cmask)
        t = {"content": self.content_weight
             * (feats[self.content_layer] - self.content_target).pow(2).mean()}
        style = x.new_zeros(())
        for layer in self.style_layers:
            for r in range(self.regions):
                g = masked_gram(feats[layer], mks[layer][:, r : r + 1])
                style = style + lam[layer][r] * (g - self.style_grams[layer][r]).pow(2).mean()
        t["style"] = self.style_weight * style
        t["tv"] = self.tv_weight * tv_energy(x)
        if with_matting and self.laplacian is not None:
            t["matting"] = self.matting_weight * matting_energy(x, self.laplacian)
        return t


def _build_objective(backbone, content: torch.Tensor, reference: torch.Tensor,
                     cmask: torch.Tensor, rmask: torch.Tensor, *, style_layers: tuple[str, ...],
                     content_layer: str, region_weights: str, weights: dict[str, float],
                     matting_eps: float, with_laplacian: bool) -> _Objective:
    """Compute the fixed targets of the energy (no gradient). ``weights``: the four term
    weights keyed ``content_weight``, ``style_weight``, ``tv_weight``, ``matting_weight``;
    the matting Laplacian of ``content`` is built only when ``with_laplacian``."""
    regions = cmask.shape[1]
    with torch.no_grad():
        fc, _ = vgg_features_with_masks(backbone, content, (content_layer,))
        content_target = fc[content_layer].detach()
        fr, mr = vgg_features_with_masks(backbone, reference, style_layers, rmask)
        style_grams = {
            layer: [masked_gram(fr[layer], mr[layer][:, r : r + 1]) for r in range(regions)]
            for layer in style_layers}
        areas = cmask.mean((0, 2, 3))                            # R content region areas
        laplacian = matting_laplacian(content, eps=matting_eps, dtype=content.dtype).to(
            content.device) if with_laplacian else None
    return _Objective(backbone, cmask, style_layers, content_layer, region_weights,
                      **weights, content_target=content_target, style_grams=style_grams,
                      areas=areas, laplacian=laplacian)


def _run_stage(objective: _Objective, x: torch.Tensor, stage: int, n_iter: int,
               history_size: int, progress, report: StyleReport) -> torch.Tensor:
    """One L-BFGS stage (stage 2 adds the matting term) from ``x``; records the stage's
    region weights and losses in ``report`` and returns the optimised image."""
    with_matting = stage == 2
    lam = objective.lambdas(x)
    report.region_weights.append({"stage": stage, **{
        layer: [round(float(v), 6) for v in lam[layer]] for layer in objective.style_layers}})
    x = x.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=n_iter, max_eval=int(n_iter * 1.25) + 1,
                            history_size=history_size, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)
    evals = {"n": 0}
    first: dict[str, float] = {}

    def closure():
        opt.zero_grad()
        t = objective.terms(x, lam, with_matting)
        total = sum(t.values())
        total.backward()
        evals["n"] += 1
        if not first:
            first.update({k: float(v.detach()) for k, v in t.items()},
                         total=float(total.detach()))
        if progress is not None:
            progress(stage, evals["n"], float(total.detach()))
        return total

    t0 = time.perf_counter()
    opt.step(closure)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        final = {k: float(v) for k, v in objective.terms(x, lam, with_matting).items()}
    final["total"] = sum(final.values())
    n_done = int(opt.state[opt._params[0]].get("n_iter", 0))
    report.stages.append({"stage": stage, "matting": with_matting, "iterations": n_done,
                          "evaluations": evals["n"], "seconds": round(seconds, 3),
                          "initial": first, "final": final})
    return x


def _measure(report: StyleReport, result: torch.Tensor, content: torch.Tensor,
             reference: torch.Tensor, rmask: torch.Tensor, seg: Segmentation,
             objective: _Objective, matting_eps: float) -> None:
    """Fill ``report``'s luminance SSIM, per-region colour distances and matting energies."""
    cmask, areas, laplacian = objective.cmask, objective.areas, objective.laplacian
    dev, dt = content.device, content.dtype
    with torch.no_grad():
        report.ssim_luminance = luminance_ssim(result, content) \
            if min(content.shape[-2:]) >= 11 else float("nan")
        before = region_color_distance(content, cmask, reference, rmask)
        after = region_color_distance(result, cmask, reference, rmask)
        rarea = rmask.mean((0, 2, 3))
        report.regions = [{"name": seg.names[r], "area_content": float(areas[r]),
                           "area_reference": float(rarea[r]),
                           "distance_before": float(before[r]),
                           "distance_after": float(after[r])} for r in range(objective.regions)]
        lap = laplacian if laplacian is not None else matting_laplacian(content, eps=matting_eps,
                                                                        dtype=dt).to(dev)
        n_pix = content.shape[-1] * content.shape[-2]
        e_c, e_r = float(matting_energy(content, lap)), float(matting_energy(result, lap))
        report.matting_energy = {"content": e_c, "result": e_r, "result_per_pixel": e_r / n_pix}


def style_transfer(
    content: torch.Tensor,
    reference: torch.Tensor,
    masks: Segmentation | tuple[torch.Tensor, torch.Tensor] | str | None = None,
    *,
    content_weight: float = CONTENT_WEIGHT,
    style_weight: float = STYLE_WEIGHT,
    tv_weight: float = TV_WEIGHT,
    matting_weight: float = MATTING_WEIGHT,
    iterations: tuple[int, int] = ITERATIONS,
    vgg=None,
    random_init: bool = False,
    region_weights: str = "adaptive",
    style_layers: Sequence[str] = STYLE_LAYERS,
    content_layer: str = CONTENT_LAYER,
    matting_eps: float = MATTING_EPS,
    segments: int = 3,
    seed: int = 0,
    history_size: int = 50,
    progress=None,
) -> tuple[torch.Tensor, StyleReport]:
    """Photorealistic, region-aware transfer of ``reference``'s look onto ``content``.

    Args:
        content: ``1 x 3 x H x W`` sRGB in [0, 1] (>= 16 px a side).
        reference: ``1 x 3 x H' x W'`` sRGB in [0, 1] (any size).
        masks: None = offline co-segmentation (:func:`isplab.enhance.segment.co_segment`
            with ``segments`` clusters); ``"global"``; a :class:`Segmentation`; or a pair
            ``(content_masks 1 x R x H x W, reference_masks 1 x R x H' x W')``.
        content_weight, style_weight, tv_weight, matting_weight: term weights (module doc).
        iterations: L-BFGS iterations of stage 1 (no matting) and stage 2 (with matting);
            0 skips a stage.
        vgg: a VGG-19 Backbone, the path of torchvision's ``vgg19-dcbb9e9d.pth``, or None
            (searched; missing -> IsplabError naming the file).
        random_init: random VGG-19 (tests and smoke runs only).
        region_weights: ``"adaptive"`` (seed MPSE) or ``"uniform"`` (DPST).
        matting_eps: Laplacian regulariser (1e-7; 1e-5 as the TF port).
        progress: optional callable ``(stage, evaluation, total_loss)``.

    Returns:
        ``(result 1 x 3 x H x W sRGB in [0, 1], StyleReport)``.
    """
    _check_image(content, "content")
    _check_image(reference, "reference")
    weights = {"content_weight": content_weight, "style_weight": style_weight,
               "tv_weight": tv_weight, "matting_weight": matting_weight}
    its = _check_options(region_weights, iterations, weights)
    backbone = resolve_vgg(vgg, random_init)
    dev, dt = content.device, content.dtype
    backbone = backbone.to(device=dev, dtype=dt)
    reference = reference.to(device=dev, dtype=dt)
    seg = _resolve_masks(masks, content, reference, segments, seed)
    cmask = seg.content_masks.to(device=dev, dtype=dt)
    rmask = seg.reference_masks.to(device=dev, dtype=dt)
    report = StyleReport(seg.method, list(seg.names),
                         vgg="random" if random_init else "imagenet")
    objective = _build_objective(
        backbone, content, reference, cmask, rmask, style_layers=tuple(style_layers),
        content_layer=content_layer, region_weights=region_weights, weights=weights,
        matting_eps=matting_eps, with_laplacian=matting_weight > 0 and its[1] > 0)

    x = content.detach().clone()
    for stage, n_iter in enumerate(its, start=1):
        if n_iter == 0:
            continue
        x = _run_stage(objective, x, stage, n_iter, history_size, progress, report)

    result = x.detach().clamp(0, 1)
    _measure(report, result, content, reference, rmask, seg, objective, matting_eps)
    return result, report
