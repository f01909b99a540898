"""``supervised``: ``losses(model(input), target)``, the default objective, with the optional
GAN of the recipe's ``gan:`` (a discriminator judging the output against the target, as DPED
and PyNET's last stage do)."""

from __future__ import annotations

from typing import Any

import torch

from isplab.models.dped import critic_logit
from isplab.train.objectives import OBJECTIVES, Objective


@OBJECTIVES.register("supervised", description="model(input) vs target with the recipe's "
                     "losses (+ optional GAN)")
class SupervisedObjective(Objective):
    """One step: forward the input with the stage's ``forward`` options, compare with the
    target (resized to the stage's ``target_scale``) through the stage's losses (plus the
    generator's adversarial term when ``gan`` is set), optimise; then ``gan.d_steps``
    discriminator steps on (target, output). Validation: the recipe's ``train.metrics``
    (the EMA model when enabled)."""

    def __init__(self, trainer) -> None:
        super().__init__(trainer)
        keys: list[str] = []
        for st in trainer.stages:
            keys += [k for k in st["losses"] if k not in keys]
        if trainer.gan:
            keys.append("d_loss")
        self.loss_keys = keys

    def train_step(self, batch: dict[str, Any], step: int):
        t = self.trainer
        x, y = t.batch_input(batch), t.batch_target(batch)
        if not torch.isfinite(y).all():
            return t.skip(step, f"step {step}: non-finite target in "
                                f"{t.describe_items(batch, ~torch.isfinite(y))}")
        t.ddp_model.train()
        with t.autocast():
            pred = t.forward(x)
        pred = pred.float()
        t.check_output(pred, y)
        inputs = {}
        mode = (t.gan or {}).get("input", "rgb")
        if t.disc is not None:
            inputs["fake_logits"] = critic_logit(t.ddp_disc, pred, mode)
        if not torch.isfinite(pred).all():
            bad = "" if torch.isfinite(x).all() else ", the input batch is not finite"
            return t.skip(step, f"step {step}: non-finite model output{bad}")
        total, terms = t.loss_fn(pred, y, **inputs)
        if not torch.isfinite(total):
            return t.skip(step, f"step {step}: non-finite loss {float(total)} (terms {terms})")
        t.optimise(total, t.opt, t.model)
        t.step_scheduler()
        if t.disc is not None:
            for _ in range(int(t.gan.get("d_steps", 1))):
                real = critic_logit(t.ddp_disc, y, mode)
                fake = critic_logit(t.ddp_disc, pred.detach(), mode)
                d_loss = t.adv.discriminator(real, fake)
                t.optimise(d_loss, t.d_opt, t.disc, scaled=False)
            terms = {**terms, "d_loss": float(d_loss.detach())}
        return float(total.detach()), terms

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        t = self.trainer
        model = t.ema.module if t.ema is not None else t.model
        model.eval()
        sums = {k: 0.0 for k in t.metrics}
        count = 0
        for batch in t.val_batches():
            x, y = t.batch_input(batch, "val"), t.batch_target(batch, "val")
            with t.autocast():
                pred = model(x, **t.stage["forward"])
            pred = pred.float().clamp(0, 1)
            for k, m in t.metrics.items():
                sums[k] += float(m(pred, y).sum())
            count += x.shape[0]
        return {k: v / max(count, 1) for k, v in sums.items()}
