"""The MPSE enhancement pipeline (seed MPSE), one photo at a time:

1. paired enhancement by a trained zoo model taking sRGB to sRGB (``dped_rgb``,
   ``dped_plus_rgb``, ...) from a weights file — skipped, with a note, when none is given;
2. semantic photorealistic style transfer (:func:`isplab.enhance.style.style_transfer`) when a
   reference is given, or recommended from a folder of candidates
   (:func:`isplab.enhance.recommend.recommend_references`);
3. post-processing (:func:`isplab.enhance.lime.post_process`: none, he, clahe, lime, gamma).

MDIE is :mod:`isplab.enhance.mdie`. Images are ``1 x 3 x H x W`` sRGB in [0, 1].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from isplab.enhance.lime import post_process
from isplab.enhance.style import ITERATIONS, style_transfer
from isplab.errors import InvalidInputError

log = logging.getLogger(__name__)

POST_METHODS = ("none", "he", "clahe", "lime", "gamma")


@dataclass
class EnhanceResult:
    """``image``: ``1 x 3 x H x W`` sRGB; ``notes``: one line per phase (what ran or why it
    was skipped); ``report``: numbers per phase (style report as a dict, reference ranking)."""

    image: torch.Tensor
    notes: list[str] = field(default_factory=list)
    report: dict = field(default_factory=dict)


def resize_max_side(image: torch.Tensor, max_side: int | None) -> torch.Tensor:
    """Downscale (area) so that the longer side is at most ``max_side`` (None: unchanged)."""
    if max_side is None:
        return image
    if max_side < 16:
        raise InvalidInputError(f"max side must be >= 16 pixels, got {max_side}")
    h, w = image.shape[-2:]
    if max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    return F.interpolate(image, size=(max(1, round(h * s)), max(1, round(w * s))),
                         mode="area")


def load_enhancer(path: str | Path) -> nn.Module:
    """A trained sRGB -> sRGB zoo model from a safetensors weights file (``load_model``).

    Raises InvalidInputError (naming the file) when the model does not map sRGB to sRGB at
    the same size (e.g. a raw ISP)."""
    from isplab.models import load_model, model_info

    model = load_model(path)  # refuses names outside the registry before anything runs
    name = model.isplab_name
    info = model_info(name)
    if info["input"] != "srgb" or info["output"] != "srgb" or info["output_scale"] != 1:
        raise InvalidInputError(f"model {name!r} maps {info['input']} to {info['output']} "
                                f"(x{info['output_scale']}); phase 1 needs an sRGB -> sRGB "
                                "model such as dped_rgb or dped_plus_rgb", path)
    model.eval()
    return model


def apply_enhancer(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Run an sRGB -> sRGB model on ``1 x 3 x H x W`` (no gradient), clipped to [0, 1]."""
    p = next(model.parameters(), None)
    x = image if p is None else image.to(device=p.device, dtype=p.dtype)
    with torch.no_grad():
        return model(x).to(image).clamp(0, 1)


def _enhance_phase(res: EnhanceResult, x: torch.Tensor, model: nn.Module | str | Path | None,
                   say) -> torch.Tensor:
    """Phase 1: the paired enhancement of ``x`` by ``model`` (a module or weights file),
    noted in ``res``; ``x`` unchanged, with a note, when ``model`` is None."""
    if model is None:
        res.notes.append("phase 1 skipped: no trained model given (--model W.safetensors)")
        return x
    net = load_enhancer(model) if isinstance(model, (str, Path)) else model
    say(1, "paired enhancement")
    x = apply_enhancer(net, x)
    res.notes.append(f"phase 1: {type(net).__name__}"
                     + (f" from {model}" if isinstance(model, (str, Path)) else ""))
    return x


def _recommended_reference(res: EnhanceResult, x: torch.Tensor, references: str | Path, *,
                           vgg, random_vgg: bool, input_path: Path | None, say
                           ) -> torch.Tensor:
    """The candidate in the folder ``references`` closest to ``x`` (read); the ranking goes
    into ``res.report["recommendation"]`` and a note."""
    from isplab.enhance.recommend import recommend_references
    from isplab.io import read_image

    say(2, "ranking references")
    rec = recommend_references(x, references, vgg=None if random_vgg else vgg,
                               method="stats" if random_vgg else "auto",
                               exclude=input_path)
    res.report["recommendation"] = {"method": rec.method, "message": rec.message,
                                    "ranking": [(str(p), d) for p, d in rec.ranking[:5]]}
    res.notes.append(f"reference recommended: {rec.best.name} ({rec.message})")
    return read_image(rec.best)


def _style_phase(res: EnhanceResult, x: torch.Tensor, reference: torch.Tensor,
                 masks: tuple[str | Path, str | Path] | None, *, vgg, random_vgg: bool,
                 iterations: tuple[int, int], style_options: dict | None, say
                 ) -> torch.Tensor:
    """Phase 2: style transfer of ``reference`` onto ``x`` (user masks or co-segmentation);
    the style report goes into ``res.report["style"]`` and a note."""
    seg = None
    if masks is not None:
        from isplab.enhance.segment import palette_segmentation

        seg = palette_segmentation(masks[0], masks[1], x, reference)
    say(2, "style transfer")
    x, rep = style_transfer(x, reference, seg, vgg=vgg, random_init=random_vgg,
                            iterations=iterations,
                            progress=(lambda s, i, v: say(2, f"stage {s}, eval {i}")),
                            **(style_options or {}))
    res.report["style"] = rep.to_dict()
    res.notes.append(
        f"phase 2: style transfer ({rep.regions_method}, regions {rep.region_names}), "
        f"luminance SSIM to input {rep.ssim_luminance:.3f}, region colour distance "
        f"{rep.color_distance_before:.1f} -> {rep.color_distance_after:.1f}")
    return x


def enhance_mpse(
    image: torch.Tensor,
    *,
    model: nn.Module | str | Path | None = None,
    reference: torch.Tensor | None = None,
    references: str | Path | None = None,
    masks: tuple[str | Path, str | Path] | None = None,
    post: str = "none",
    vgg=None,
    random_vgg: bool = False,
    iterations: tuple[int, int] = ITERATIONS,
    style_options: dict | None = None,
    post_options: dict | None = None,
    input_path: Path | None = None,
    progress=None,
) -> EnhanceResult:
    """MPSE on one photo (module doc).

    Args:
        image: ``1 x 3 x H x W`` sRGB in [0, 1].
        model: phase-1 model (module or weights file); None skips phase 1.
        reference: phase-2 style reference ``1 x 3 x H' x W'``; or
        references: a folder of candidates, the closest one (recommendation) is used.
        masks: ``(content_mask, reference_mask)`` colour-coded PNGs (DPST palette); default
            offline co-segmentation.
        post: phase-3 method (``none``, ``he``, ``clahe``, ``lime``, ``gamma``).
        vgg, random_vgg: VGG-19 for style transfer / recommendation (see ``style_transfer``).
        iterations: L-BFGS iterations of the two style stages.
        style_options, post_options: extra keyword arguments of the two phases.
        input_path: the input's file (never recommended as its own reference).
        progress: optional callable ``(phase, message)``.
    """
    if post not in POST_METHODS:
        raise InvalidInputError(f"--post must be one of {', '.join(POST_METHODS)}, "
                                f"got {post!r}")
    if reference is not None and references is not None:
        raise InvalidInputError("give either a reference or a folder of references, not both")
    say = progress or (lambda phase, msg: None)
    res = EnhanceResult(image)
    x = _enhance_phase(res, image, model, say)
    if references is not None:
        reference = _recommended_reference(res, x, references, vgg=vgg, random_vgg=random_vgg,
                                           input_path=input_path, say=say)
    if reference is None:
        res.notes.append("phase 2 skipped: no reference (--reference R or --references DIR)")
    else:
        x = _style_phase(res, x, reference, masks, vgg=vgg, random_vgg=random_vgg,
                         iterations=iterations, style_options=style_options, say=say)
    if post == "none":
        res.notes.append("phase 3 skipped: --post none")
    else:
        say(3, post)
        x = post_process(x, post, **(post_options or {})).clamp(0, 1)
        res.notes.append(f"phase 3: {post}")
    res.image = x
    return res
