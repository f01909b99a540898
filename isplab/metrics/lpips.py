"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric"), version 0.1: the learned perceptual distance with AlexNet or VGG-16 features.

Protocol: sRGB in [0, 1] is mapped to [-1, 1], shifted and scaled per channel (LPIPS's scaling
layer), passed through the backbone; at each tap the features are unit-normalised along the
channels, their squared difference is weighted per channel by the learned linear layer,
averaged over space, and the layers are summed. Lower is more similar; 0 for identical images.

Weights: the backbone from torchvision's checkpoint file (see :mod:`isplab.backbones`), the
linear layers from the installed ``torchmetrics`` package data (``lpips_models/{alex,vgg}.pth``;
``pip install 'isplab[metrics]'``). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from isplab.backbones import load_backbone
from isplab.errors import InvalidInputError, IsplabError

#: LPIPS's scaling layer, applied to inputs in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

#: net -> (backbone, taps)
NETS = {
    "alex": ("alexnet", ("relu1", "relu2", "relu3", "relu4", "relu5")),
    "vgg": ("vgg16", ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")),
}


def lpips_linear_weights(net: str, path: str | Path | None = None) -> list[torch.Tensor]:
    """The five per-channel weight vectors of LPIPS v0.1's linear layers.

    Read from ``path`` or from torchmetrics' package data (keys ``lin{i}.model.1.weight``,
    shape ``1 x C x 1 x 1``).
    """
    if net not in NETS:
        raise IsplabError(f"unknown LPIPS net {net!r}; choose from {', '.join(NETS)}")
    if path is None:
        # locate torchmetrics' package data without importing torchmetrics
        spec = importlib.util.find_spec("torchmetrics")
        if spec is None or spec.origin is None:
            raise IsplabError(
                "LPIPS needs its linear-layer weights from torchmetrics' package data: "
                "pip install 'isplab[metrics]' (plain torchmetrics, not torchmetrics[image])")
        path = Path(spec.origin).parent / "functional" / "image" / "lpips_models" / f"{net}.pth"
    path = Path(path)
    if not path.is_file():
        raise IsplabError("LPIPS linear-layer weights not found", path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        return [state[f"lin{i}.model.1.weight"].reshape(-1).float() for i in range(5)]
    except KeyError as exc:
        raise IsplabError(f"not an LPIPS v0.1 linear-layer file (missing {exc})", path) from exc


def normalize_channels(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit-normalise ``N x C x H x W`` features along C (LPIPS's ``normalize_tensor``)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def lpips_from_features(feats_x: list[torch.Tensor], feats_y: list[torch.Tensor],
                        weights: list[torch.Tensor]) -> torch.Tensor:
    """Combine per-layer features into the LPIPS distance, shape ``N``.

    ``sum_l mean_hw sum_c w_l[c] * (n(x_l) - n(y_l))[c]^2`` with ``n`` the channel
    normalisation.
    """
    total = None
    for fx, fy, w in zip(feats_x, feats_y, weights, strict=True):
        d = (normalize_channels(fx) - normalize_channels(fy)) ** 2
        layer = (d * w.to(d).view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
        total = layer if total is None else total + layer
    return total


class LPIPS(nn.Module):
    """LPIPS distance module (frozen). ``forward(x, y)`` -> distances of shape ``N``.

    Args:
        net: ``alex`` (the LPIPS paper's default) or ``vgg``.
        weights: torchvision backbone checkpoint (file or folder); default: search
            ``$ISPLAB_WEIGHTS_DIR`` and torch hub's cache.
        lin_weights: LPIPS linear-layer file; default: torchmetrics' package data.
        random_init: random backbone (tests and smoke runs only: not a perceptual metric).
    """

    def __init__(self, net: str = "alex", weights: str | Path | None = None,
                 lin_weights: str | Path | None = None, random_init: bool = False):
        super().__init__()
        if net not in NETS:
            raise IsplabError(f"unknown LPIPS net {net!r}; choose from {', '.join(NETS)}")
        backbone, self.taps = NETS[net]
        self.net = net
        self.backbone = load_backbone(backbone, weights=weights, random_init=random_init)
        for i, w in enumerate(lpips_linear_weights(net, lin_weights)):
            self.register_buffer(f"lin{i}", w)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def features(self, srgb: torch.Tensor) -> list[torch.Tensor]:
        x = (srgb * 2 - 1 - self.shift) / self.scale
        out = self.backbone(x, self.taps, normalize=False)
        return [out[t] for t in self.taps]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for name, t in (("x", x), ("y", y)):
            if not isinstance(t, torch.Tensor) or t.ndim != 4 or t.shape[1] != 3:
                shape = tuple(t.shape) if hasattr(t, "shape") else type(t).__name__
                raise InvalidInputError(f"LPIPS takes N x 3 x H x W sRGB, got {name} {shape}")
        if x.shape != y.shape:
            raise InvalidInputError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            raise InvalidInputError("LPIPS input contains NaN or infinite values")
        weights = [getattr(self, f"lin{i}") for i in range(5)]
        return lpips_from_features(self.features(x), self.features(y), weights)
