"""MDIE: multi-domain intrinsic enhancement (seed MPSE/MDIE).

A photo is decomposed into albedo ``A`` and shading ``S`` (``intrinsic_net``, linear light
``I = A * S``); one StarGAN generator (``stargan_generator``) translates the components
toward the high-quality side of each domain, and the image is rebuilt as ``A' * S'``. In
the seed (:data:`SEED_ROUTING`), colour on the albedo and the shading, texture and noise
on the shading (detail and noise are enhanced on the illumination layer).

Which components a domain acts on is the translator's ``routing`` (recorded with its weights
from the recipe's ``objective.routing``, :func:`parse_routing`). With our decomposition the
shading is edge-aware smooth, so blur, JPEG and noise land almost entirely in the albedo
(``benchmarks/mdie.py`` measures the split); ``configs/mdie_translator.yaml`` therefore
routes texture and noise to the albedo (a cast, too, lands in the albedo; colour keeps both).

Inference modes (StarGAN never sees all labels on at once during training):

- ``all``: one pass with every domain label and mask entry at 1;
- ``sequential``: colour, then texture, then noise, one domain label at a time;
- ``colour`` / ``texture`` / ``noise``: that domain only (e.g. denoising alone).

The shading (``> 0``, geometric mean ~1) is shown to the translator as a grey image
``u = S / (1 + S)`` in (0, 1) (:func:`shading_to_image`), inverted by
:func:`image_to_shading`. A translator trained with ``component: image`` (no decomposition)
translates the photo itself in the same modes.

Training: ``isplab train configs/mdie_intrinsic.yaml`` then ``configs/mdie_translator.yaml``
(the ``intrinsic`` and ``stargan`` objectives of :mod:`isplab.train.objectives`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from isplab.errors import InvalidInputError
from isplab.models.intrinsic import image_to_shading, shading_to_image  # noqa: F401
from isplab.models.stargan import (  # noqa: F401  (MDIE's building blocks, used by its callers)
    COMPONENTS,
    N_DOMAINS,
    SEED_ROUTING,
    Routing,
    domain_labels,
    parse_routing,
    train_on_albedo,
    translate_components,
)
from isplab.synth.degradations import DOMAINS

#: inference modes: every domain at once, one after the other, or a single domain
MODES = ("all", "sequential", *DOMAINS)


def mode_labels(mode: str, n: int, ref: torch.Tensor) -> list[torch.Tensor]:
    """The label passes of an inference mode (``all``: one; ``sequential``: three; a domain
    name: that domain's label alone)."""
    if mode == "all":
        return [domain_labels(n, range(N_DOMAINS), ref)]
    if mode == "sequential":
        return [domain_labels(n, [d], ref) for d in range(N_DOMAINS)]
    if mode in DOMAINS:
        return [domain_labels(n, [DOMAINS.index(mode)], ref)]
    raise InvalidInputError(f"MDIE mode must be one of {MODES}, got {mode!r}")


@dataclass
class MDIE:
    """A trained translator and (component mode) the intrinsic network it was trained on."""

    translator: nn.Module
    intrinsic: nn.Module | None = None
    routing: Routing | None = None  # None: the seed's (:data:`SEED_ROUTING`)

    @torch.no_grad()
    def enhance(self, srgb: torch.Tensor, mode: str = "all") -> torch.Tensor:
        """sRGB ``N x 3 x H x W`` in [0, 1] -> enhanced sRGB (``mode``: one of :data:`MODES`)."""
        if srgb.ndim != 4 or srgb.shape[1] != 3:
            raise InvalidInputError(f"MDIE takes N x 3 x H x W sRGB, got {tuple(srgb.shape)}")
        passes = mode_labels(mode, srgb.shape[0], srgb)
        self.translator.eval()
        if self.intrinsic is None:
            x = srgb
            for labels in passes:
                x = self.translator(x, labels)
            return x.clamp(0.0, 1.0)
        self.intrinsic.eval()
        return translate_components(self.intrinsic, self.translator, srgb, passes,
                                    self.routing)


def load_mdie(model: str | Path, intrinsic: str | Path | None = None) -> MDIE:
    """The MDIE system from a translator's weights or training-run folder.

    ``model``: ``stargan_generator`` weights (``.safetensors``) or a run folder holding
    ``model.safetensors``. The intrinsic network is ``intrinsic`` when given, else the
    ``intrinsic_weights`` recorded with the translator (its recipe's ``objective``); a
    translator trained with ``component: image`` needs none. The routing of the domains to
    the components is the recorded ``objective.routing`` (the seed's when absent).
    """
    from isplab.models import load_model, read_weights_meta

    path = Path(model)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise InvalidInputError("MDIE translator weights not found (train one with isplab "
                                "train configs/mdie_translator.yaml)", path)
    translator = load_model(path)
    if getattr(translator, "isplab_name", "") != "stargan_generator":
        raise InvalidInputError(f"not a stargan_generator ({translator.isplab_name}): MDIE "
                                "needs the translator trained by configs/mdie_translator.yaml",
                                path)
    objective = read_weights_meta(path).get("objective") or {}
    if intrinsic is None and objective.get("component") == "intrinsic":
        intrinsic = objective.get("intrinsic_weights")
        if intrinsic is None or not Path(intrinsic).is_file():
            raise InvalidInputError(f"the translator was trained on intrinsic components of "
                                    f"{intrinsic}, which is not here: pass --intrinsic FILE",
                                    path)
    decomposer = None
    if intrinsic is not None:
        ipath = Path(intrinsic)
        if ipath.is_dir():
            ipath = ipath / "model.safetensors"
        decomposer = load_model(ipath)
        if getattr(decomposer, "isplab_name", "") != "intrinsic_net":
            raise InvalidInputError("not an intrinsic_net weights file", ipath)
    routing = parse_routing(objective.get("routing"))
    return MDIE(translator.eval(), None if decomposer is None else decomposer.eval(), routing)
