"""ImageNet backbones for perceptual losses and LPIPS: VGG-16, VGG-19 and AlexNet feature
stacks, defined here with torchvision-compatible parameter names (``features.N.weight``) so
that the standard torchvision checkpoint files load as they are — without torchvision, which
does not work with the CPU build of torch this project pins.

Weights are never bundled and never downloaded silently. :func:`load_backbone` looks for the
torchvision file name (e.g. ``vgg19-dcbb9e9d.pth``) in, in order: the ``weights`` argument (a
file or folder), ``$ISPLAB_WEIGHTS_DIR``, and torch hub's checkpoint cache (where torchvision
itself saves them); ``download=True`` fetches it with torch hub from the official URL.
Checkpoints are read with ``torch.load(weights_only=True)`` or safetensors: no pickled code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from isplab.errors import IsplabError

#: ImageNet normalisation used by all three backbones (inputs are RGB in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    filename: str  # torchvision's checkpoint file name
    url: str


SPECS = {
    "vgg16": BackboneSpec("vgg16", "vgg16-397923af.pth",
                          "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "vgg19": BackboneSpec("vgg19", "vgg19-dcbb9e9d.pth",
                          "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
    "alexnet": BackboneSpec("alexnet", "alexnet-owt-7be5be79.pth",
                            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
}

_VGG_CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


class Backbone(nn.Module):
    """A ``features`` stack whose named ReLU outputs can be read out.

    ``layer_names`` maps names to indices in ``features``: ``relu{block}_{conv}`` for VGG
    (``relu5_4`` is index 35 in VGG-19), ``relu1`` .. ``relu5`` for AlexNet (the LPIPS taps).
    """

    def __init__(self, name: str, features: nn.Sequential, layer_names: dict[str, int]):
        super().__init__()
        self.name = name
        self.features = features
        self.layer_names = layer_names
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, srgb: torch.Tensor, layers: list[str] | tuple[str, ...],
                normalize: bool = True) -> dict[str, torch.Tensor]:
        """Features of ``srgb`` (``N x 3 x H x W`` in [0, 1]) at the named layers.

        With ``normalize`` the input is ImageNet-normalised first. Stops after the deepest
        requested layer.
        """
        unknown = [name for name in layers if name not in self.layer_names]
        if unknown:
            raise IsplabError(f"{self.name} has no layer {unknown}; choose from "
                              f"{', '.join(self.layer_names)}")
        x = (srgb - self.mean) / self.std if normalize else srgb
        wanted = {self.layer_names[name]: name for name in layers}
        out: dict[str, torch.Tensor] = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
                if len(out) == len(wanted):
                    break
        return out


def _vgg(name: str) -> Backbone:
    layers: list[nn.Module] = []
    names: dict[str, int] = {}
    c_in, block, conv = 3, 1, 0
    for v in _VGG_CFG[name]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            block, conv = block + 1, 0
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
            conv += 1
            names[f"relu{block}_{conv}"] = len(layers) - 1
            c_in = v
    return Backbone(name, nn.Sequential(*layers), names)


def _alexnet() -> Backbone:
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(3, 2),
    )
    return Backbone("alexnet", features, {"relu1": 1, "relu2": 4, "relu3": 7, "relu4": 9,
                                          "relu5": 11})


def build_backbone(name: str) -> Backbone:
    """An uninitialised (random) backbone: ``vgg16``, ``vgg19`` or ``alexnet``."""
    if name not in SPECS:
        raise IsplabError(f"unknown backbone {name!r}; choose from {', '.join(SPECS)}")
    model = _alexnet() if name == "alexnet" else _vgg(name)
    # He normal over the fan-in, zero bias: keeps the activation scale through the stack.
    # With PyTorch's default conv init the activations shrink layer by layer and a random
    # VGG-19's relu5_4 is ~1e-7 of its input, so a random-weight perceptual loss (tests,
    # smoke runs, machines without the ImageNet file) would be zero rather than random.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def find_weights(name: str, weights: str | Path | None = None) -> Path | None:
    """Where the torchvision checkpoint for ``name`` is, or None (see the module docstring)."""
    spec = SPECS[name]
    if weights is not None:  # an explicit choice is used or refused, never replaced
        w = Path(weights)
        path = w / spec.filename if w.is_dir() else w
        if not path.is_file():
            raise IsplabError(f"no {name} weights at {weights} (expected the torchvision file "
                              f"{spec.filename})")
        return path
    candidates: list[Path] = []
    env = os.environ.get("ISPLAB_WEIGHTS_DIR")
    if env:
        candidates.append(Path(env) / spec.filename)
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / spec.filename)
    for c in candidates:
        if c.is_file():
            return c
    return None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise IsplabError(f"cannot read weights ({exc.__class__.__name__}: {exc})",
                          path) from exc


def load_backbone(name: str, weights: str | Path | None = None, download: bool = False,
                  random_init: bool = False) -> Backbone:
    """A backbone with its ImageNet weights, frozen and in eval mode.

    Args:
        name: ``vgg16``, ``vgg19`` or ``alexnet``.
        weights: a checkpoint file or a folder holding torchvision's file name.
        download: fetch the official torchvision checkpoint with torch hub if not found.
        random_init: skip loading (random weights) — only for tests and smoke runs; the
            result is not a perceptual network.

    Raises:
        IsplabError: the weights are not found (the message names the file, the URL and
            where to put it), unreadable, or do not match the architecture.
    """
    model = build_backbone(name)
    if not random_init:
        spec = SPECS[name]
        path = find_weights(name, weights)
        if path is None and download:
            state = torch.hub.load_state_dict_from_url(spec.url, map_location="cpu",
                                                       weights_only=True)
        elif path is None:
            raise IsplabError(
                f"{name} weights not found: put torchvision's {spec.filename} ({spec.url}) "
                f"in $ISPLAB_WEIGHTS_DIR or {Path(torch.hub.get_dir()) / 'checkpoints'}, or "
                "pass its path (CLI: --vgg-weights FILE; library: weights=PATH or "
                "download=True)")
        else:
            state = _read_state_dict(path)
        feats = {k: v for k, v in state.items() if k.startswith("features.")}
        expected = set(model.state_dict())
        missing = sorted(expected - set(feats))
        if missing:
            raise IsplabError(f"{name} checkpoint lacks {missing[:4]}... "
                              f"({len(missing)} tensors): not a torchvision {name} file?",
                              path)
        try:
            model.load_state_dict(feats, strict=True)
        except RuntimeError as exc:
            raise IsplabError(f"{name} checkpoint does not fit the architecture: "
                              f"{str(exc).splitlines()[0]}", path) from exc
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
