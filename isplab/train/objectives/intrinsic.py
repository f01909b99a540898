"""``intrinsic``: the self-supervised albedo/shading decomposition of ``intrinsic_net``
(:func:`isplab.losses.intrinsic.decomposition_losses`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from isplab.classic import srgb_to_linear
from isplab.data.patches import item_generator
from isplab.errors import InvalidInputError
from isplab.losses.intrinsic import (
    LOSS_WEIGHTS,
    decomposition_losses,
    reshade,
    scale_invariant_error,
    synthetic_shading,
)
from isplab.metrics import psnr
from isplab.train.objectives import OBJECTIVES, Objective


@OBJECTIVES.register("intrinsic", description="self-supervised albedo/shading decomposition "
                     "(intrinsic_net)")
class IntrinsicObjective(Objective):
    """Self-supervised intrinsic decomposition (``model.decompose(srgb) -> (A, S)``).

    Options: ``weights`` (loss-term weights over
    :data:`isplab.losses.intrinsic.LOSS_WEIGHTS`), ``shading`` (options of
    :func:`isplab.losses.intrinsic.synthetic_shading`).

    Validation: ``recon_psnr`` (``A * S`` against the linear input, dB) and ``albedo_si``
    (scale-invariant error between the albedo of a validation patch and of its re-shaded
    twin; lower is steadier under relighting).
    """

    def __init__(self, trainer, weights: Mapping[str, float] | None = None,
                 shading: Mapping[str, Any] | None = None) -> None:
        super().__init__(trainer)
        self.weights = dict(weights or {})
        unknown = set(self.weights) - set(LOSS_WEIGHTS)
        if unknown:
            raise InvalidInputError(f"unknown intrinsic loss terms {sorted(unknown)}; known: "
                                    f"{sorted(LOSS_WEIGHTS)}")
        self.shading = dict(shading or {})
        self.loss_keys = list(LOSS_WEIGHTS)

    def train_step(self, batch, step):
        t = self.trainer
        x = t.batch_input(batch)
        t.model.train()
        model = t.ddp_model
        with t.autocast():
            terms = decomposition_losses(_Decomposer(model), x, t.generator(step),
                                         self.weights, self.shading)
        total = terms.pop("total").float()
        if not torch.isfinite(total):
            return t.skip(step, f"step {step}: non-finite loss {float(total)} "
                                f"(terms { {k: float(v) for k, v in terms.items()} })")
        t.optimise(total, t.opt, t.model)
        t.step_scheduler()
        return float(total.detach()), {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        t = self.trainer
        model = t.ema.module if t.ema is not None else t.model
        model.eval()
        sums = {"recon_psnr": 0.0, "albedo_si": 0.0}
        count = 0
        for i, batch in enumerate(t.val_batches()):
            x = t.batch_input(batch, "val")
            a, s = model.decompose(x)
            lin = srgb_to_linear(x)
            sums["recon_psnr"] += float(psnr((a * s).clamp(0, 1), lin).sum())
            g = item_generator(int(t.recipe["seed"]), 77, i)
            relit, valid = reshade(x, synthetic_shading(x.shape[0], x.shape[2], x.shape[3], g)
                                   .to(x))
            a2, _ = model.decompose(relit)
            sums["albedo_si"] += float(scale_invariant_error(a2, a, valid).sum())
            count += x.shape[0]
        return {k: v / max(count, 1) for k, v in sums.items()}


class _Decomposer:
    """``decompose`` through a (possibly DDP-wrapped) ``intrinsic_net``'s forward."""

    def __init__(self, model) -> None:
        self.model = model

    def decompose(self, x: torch.Tensor):
        y = self.model(x)
        return y[:, :3], y[:, 3:]
