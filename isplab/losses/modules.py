"""``nn.Module`` wrappers of :mod:`isplab.losses.functional`, and :class:`CompositeLoss`.

Each wrapper stores its options and calls the pure function. ``inputs`` names what the loss
reads from :class:`CompositeLoss`'s inputs (``pred``, ``target``, or e.g. ``fake_logits``).
Losses on VGG features load their backbone once, at construction, frozen and in eval mode.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from isplab.backbones import Backbone, load_backbone
from isplab.errors import InvalidInputError
from isplab.losses import functional as LF

log = logging.getLogger(__name__)


class _Loss(nn.Module):
    """Base: ``inputs`` = the names of the tensors ``forward`` takes, in order."""

    inputs: tuple[str, ...] = ("pred", "target")


class _PairLoss(_Loss):
    fn = staticmethod(LF.l1)

    def __init__(self, reduction: str = "mean", **opts):
        super().__init__()
        try:  # unknown options fail here, not at the first forward
            inspect.signature(type(self).fn).bind_partial(None, None, **opts)
        except TypeError as exc:
            raise InvalidInputError(f"{type(self).__name__}: {exc}") from exc
        self.reduction = reduction
        self.opts = opts

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return type(self).fn(pred, target, reduction=self.reduction, **self.opts)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.opts.items())


class L1Loss(_PairLoss):
    """:func:`isplab.losses.functional.l1`."""

    fn = staticmethod(LF.l1)


class L1GammaLoss(_PairLoss):
    """:func:`isplab.losses.functional.l1_gamma` (options ``gamma``, ``eps``)."""

    fn = staticmethod(LF.l1_gamma)


class MSELoss(_PairLoss):
    """:func:`isplab.losses.functional.mse`."""

    fn = staticmethod(LF.mse)


class CharbonnierLoss(_PairLoss):
    """:func:`isplab.losses.functional.charbonnier` (option ``eps``)."""

    fn = staticmethod(LF.charbonnier)


class SSIMLoss(_PairLoss):
    """:func:`isplab.losses.functional.ssim_loss` (option ``data_range``)."""

    fn = staticmethod(LF.ssim_loss)


class MSSSIMLoss(_PairLoss):
    """:func:`isplab.losses.functional.ms_ssim_loss` (options ``data_range``, ``scales``)."""

    fn = staticmethod(LF.ms_ssim_loss)


class LabLoss(_PairLoss):
    """:func:`isplab.losses.functional.lab_loss` (options ``alpha``, ``scales``)."""

    fn = staticmethod(LF.lab_loss)


class ColorLoss(_PairLoss):
    """:func:`isplab.losses.functional.color_loss` (options ``kernel_size``, ``nsig``)."""

    fn = staticmethod(LF.color_loss)


class CycleLoss(_Loss):
    """:func:`isplab.losses.functional.cycle_loss` on ``(reconstruction, original)``."""

    inputs = ("reconstruction", "original")

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, reconstruction: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return LF.cycle_loss(reconstruction, original, reduction=self.reduction)


class TVLoss(_Loss):
    """:func:`isplab.losses.functional.tv_loss` on ``pred`` alone."""

    inputs = ("pred",)

    def __init__(self, reduction: str = "mean", squared: bool = True):
        super().__init__()
        self.reduction = reduction
        self.squared = squared

    def forward(self, pred: torch.Tensor) -> torch.Tensor:
        return LF.tv_loss(pred, reduction=self.reduction, squared=self.squared)


class AdversarialLoss(_Loss):
    """GAN losses (``kind`` = ``gan`` | ``lsgan`` | ``hinge`` | ``wgan``) on discriminator outputs.

    ``forward(fake_logits)`` is the generator form (what a :class:`CompositeLoss` adds to
    the generator's objective); :meth:`discriminator` is the discriminator's loss.
    """

    inputs = ("fake_logits",)

    def __init__(self, kind: str = "gan", reduction: str = "mean"):
        super().__init__()
        LF._check_kind(kind)
        self.kind = kind
        self.reduction = reduction

    def forward(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return LF.generator_loss(fake_logits, self.kind, reduction=self.reduction)

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return self.forward(fake_logits)

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor
                      ) -> torch.Tensor:
        return LF.discriminator_loss(real_logits, fake_logits, self.kind,
                                     reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def load_vgg19(weights: str | Path | None = None, random_init: bool = False,
               download: bool = False, what: str = "perceptual loss") -> Backbone:
    """VGG-19 for a feature loss via :func:`isplab.backbones.load_backbone` (frozen, eval).

    ``random_init=True`` gives random weights and logs a warning: the loss is then not
    perceptual (tests and smoke runs only).
    """
    if random_init:
        log.warning("%s: VGG-19 with RANDOM weights (random_init=True): this loss is not "
                    "perceptual; use it for tests and smoke runs only", what)
    return load_backbone("vgg19", weights=weights, download=download, random_init=random_init)


class _VGGLoss(_Loss):
    def __init__(self, weights, random_init, download, backbone, what):
        super().__init__()
        self.backbone = backbone if backbone is not None else load_vgg19(
            weights, random_init=random_init, download=download, what=what)
        self.backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # the backbone stays in eval mode
        super().train(mode)
        self.backbone.eval()
        return self


class PerceptualLoss(_VGGLoss):
    """:func:`isplab.losses.functional.perceptual` with a VGG-19 loaded once.

    Args:
        layers: VGG-19 layer names, default ``("relu5_4",)``.
        distance: ``mse`` (default) or ``l1``.
        layer_weights: one weight per layer (default 1).
        weights: checkpoint file or folder (else ``$ISPLAB_WEIGHTS_DIR``, torch hub cache).
        random_init: random VGG (tests only; logs a warning).
        download: allow fetching torchvision's checkpoint.
        backbone: an already loaded backbone to share (then ``weights`` etc. are ignored).
    """

    def __init__(self, layers: Sequence[str] = LF.PERCEPTUAL_LAYERS, distance: str = "mse",
                 layer_weights: Sequence[float] | None = None,
                 weights: str | Path | None = None, random_init: bool = False,
                 download: bool = False, backbone: Backbone | None = None,
                 reduction: str = "mean"):
        super().__init__(weights, random_init, download, backbone, "perceptual loss")
        unknown = [name for name in layers if name not in self.backbone.layer_names]
        if unknown:
            raise InvalidInputError(f"VGG-19 has no layer {unknown}")
        if distance not in ("mse", "l1"):
            raise InvalidInputError(f"distance must be 'mse' or 'l1', got {distance!r}")
        self.layers = tuple(layers)
        self.distance = distance
        self.layer_weights = None if layer_weights is None else tuple(layer_weights)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.perceptual(pred, target, self.backbone, layers=self.layers,
                             distance=self.distance, layer_weights=self.layer_weights,
                             reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"layers={self.layers}, distance={self.distance!r}"


class LabVGGLoss(_VGGLoss):
    """:func:`isplab.losses.functional.lab_vgg`: Lab loss + ``vgg_weight`` x perceptual."""

    def __init__(self, alpha: float = 0.5, vgg_weight: float = 1.0,
                 layers: Sequence[str] = LF.PERCEPTUAL_LAYERS, scales: int | None = None,
                 weights: str | Path | None = None, random_init: bool = False,
                 download: bool = False, backbone: Backbone | None = None,
                 reduction: str = "mean"):
        super().__init__(weights, random_init, download, backbone, "lab_vgg loss")
        self.alpha, self.vgg_weight, self.layers = alpha, vgg_weight, tuple(layers)
        self.scales, self.reduction = scales, reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.lab_vgg(pred, target, self.backbone, alpha=self.alpha,
                          vgg_weight=self.vgg_weight, layers=self.layers, scales=self.scales,
                          reduction=self.reduction)


class GramStyleLoss(_VGGLoss):
    """:func:`isplab.losses.functional.gram_style_loss` with a VGG-19 loaded once.

    ``forward(pred, style, masks=None, style_masks=None)``; in a :class:`CompositeLoss` the
    style image is the input named ``style`` and the masks ``masks`` / ``style_masks``.
    """

    inputs = ("pred", "style")
    optional_inputs = ("masks", "style_masks")

    def __init__(self, layers: Sequence[str] = LF.STYLE_LAYERS,
                 layer_weights: Sequence[float] | None = None,
                 region_weights: Sequence[float] | None = None,
                 weights: str | Path | None = None, random_init: bool = False,
                 download: bool = False, backbone: Backbone | None = None,
                 reduction: str = "mean"):
        super().__init__(weights, random_init, download, backbone, "Gram style loss")
        self.layers = tuple(layers)
        self.layer_weights = None if layer_weights is None else tuple(layer_weights)
        self.region_weights = None if region_weights is None else tuple(region_weights)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, style: torch.Tensor,
                masks: torch.Tensor | None = None,
                style_masks: torch.Tensor | None = None) -> torch.Tensor:
        return LF.gram_style_loss(pred, style, self.backbone, layers=self.layers,
                                  layer_weights=self.layer_weights, masks=masks,
                                  style_masks=style_masks, region_weights=self.region_weights,
                                  reduction=self.reduction)


_VGG_LOSSES = ("perceptual", "lab_vgg", "gram_style_loss")


class CompositeLoss(nn.Module):
    """A weighted sum of named losses, built from a config mapping.

    ``CompositeLoss({"mse": 1.0, "perceptual": 1.0, "ms_ssim_loss": 0.4},
    perceptual={"weights": "vgg19-dcbb9e9d.pth"})``: keys are registry names
    (:func:`isplab.losses.list_losses`), values their weights; keyword arguments give each
    loss its options. A value may also be a mapping ``{"weight": w, "loss": name, **opts}``,
    so the same loss can appear twice under different keys (``loss`` defaults to the key).
    VGG losses with the same loading options (``weights``, ``random_init``, ``download``)
    share one backbone.

    ``forward(pred, target, **inputs)`` returns ``(total, terms)``: ``total`` the weighted sum
    (a scalar tensor with gradient), ``terms`` a dict key -> weighted term as a detached
    Python float, for logging. Each loss reads the inputs it names (``pred``, ``target``;
    ``fake_logits`` for the adversarial losses, ``reconstruction``/``original`` for
    ``cycle_loss``, ``style`` for ``gram_style_loss``); a missing one raises
    InvalidInputError.
    """

    def __init__(self, config: Mapping[str, float | Mapping], **per_loss_opts: Mapping):
        super().__init__()
        from isplab.losses.registry import create_loss

        if not config:
            raise InvalidInputError("CompositeLoss needs at least one loss")
        unused = set(per_loss_opts) - set(config)
        if unused:
            raise InvalidInputError(f"options given for losses not in the config: "
                                    f"{sorted(unused)}")
        self.weights: dict[str, float] = {}
        terms: dict[str, nn.Module] = {}
        shared: dict[tuple, Backbone] = {}  # one VGG-19 per distinct loading option set
        for key, value in config.items():
            opts = dict(per_loss_opts.get(key, {}))
            if isinstance(value, Mapping):
                value = dict(value)
                name = value.pop("loss", key)
                weight = value.pop("weight", 1.0)
                opts = {**value, **opts}
            else:
                name, weight = key, value
            try:
                weight = float(weight)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"weight of loss {key!r} must be a number, "
                                        f"got {weight!r}") from exc
            self.weights[key] = weight
            if name in _VGG_LOSSES and opts.get("backbone") is None:
                load = (str(opts.get("weights")), bool(opts.get("random_init", False)),
                        bool(opts.get("download", False)))
                if load in shared:
                    opts["backbone"] = shared[load]
                terms[key] = create_loss(name, **opts)
                shared.setdefault(load, terms[key].backbone)
            else:
                terms[key] = create_loss(name, **opts)
        self.terms = nn.ModuleDict(terms)

    def forward(self, pred: torch.Tensor | None = None, target: torch.Tensor | None = None,
                **inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        available = {"pred": pred, "target": target, **inputs}
        total: torch.Tensor | None = None
        logged: dict[str, float] = {}
        for key, loss in self.terms.items():
            needed = getattr(loss, "inputs", ("pred", "target"))
            missing = [n for n in needed if available.get(n) is None]
            if missing:
                raise InvalidInputError(f"loss {key!r} needs the input(s) {missing}: pass "
                                        f"them to CompositeLoss(...)(pred, target, "
                                        f"{missing[0]}=...)")
            args = [available[n] for n in needed]
            kwargs = {n: available[n] for n in getattr(loss, "optional_inputs", ())
                      if available.get(n) is not None}
            term = self.weights[key] * loss(*args, **kwargs)
            logged[key] = float(term.detach())
            total = term if total is None else total + term
        return total, logged

    def extra_repr(self) -> str:
        return ", ".join(f"{k}: {w:g}" for k, w in self.weights.items())
