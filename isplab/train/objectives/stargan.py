"""``stargan``: StarGAN multi-domain translation with WGAN-GP (MDIE's translator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from isplab.errors import InvalidInputError
from isplab.losses.functional import gradient_penalty
from isplab.metrics import psnr
from isplab.models import load_model
from isplab.models.intrinsic import shading_to_image
from isplab.models.stargan import parse_routing, train_on_albedo, translate_components
from isplab.synth.degradations import DOMAINS
from isplab.train.objectives import OBJECTIVES, Objective


def _psnr_by_domain(rows: list[tuple[int, float, float]]) -> dict[str, float]:
    """Mean translated / input PSNR of ``(domain, translated, input)`` rows, overall and for
    each domain present (``psnr_noise``, ``psnr_input_noise``, ...)."""

    def means(sel, suffix=""):
        n = max(len(sel), 1)
        return {f"psnr{suffix}": sum(r[1] for r in sel) / n,
                f"psnr_input{suffix}": sum(r[2] for r in sel) / n}

    out = means(rows)
    for d, name in enumerate(DOMAINS):
        sel = [r for r in rows if r[0] == d]
        if sel:
            out.update(means(sel, f"_{name}"))
    return out


@OBJECTIVES.register("stargan", description="StarGAN multi-domain translation "
                     "(WGAN-GP; MDIE)")
class StarGANObjective(Objective):
    """StarGAN (Choi et al. 2018) with the multi-dataset mask vector, as MDIE uses it.

    Each training item carries ``labels`` (3: colour, texture, noise; 1 = high quality at its
    domain) and ``mask`` (3: one-hot domain). The target of a sample is its own label with
    its domain's quality flipped (the other labels stay 0, as StarGAN zeroes the labels of
    the other datasets). One trainer step is one critic step::

        L_D = -D(x) + D(G(x, c')) + l_cls BCE(D_cls(x)[domain], c) + l_gp GP

    and every ``n_critic``-th step also a generator step::

        L_G = -D(G(x, c')) + l_cls BCE(D_cls(G(x, c'))[domain], c') + l_rec |x - G(G(x, c'), c)|

    (``l_cls`` 1, ``l_rec`` 10, ``l_gp`` 10, ``n_critic`` 5, Adam 1e-4 (0.5, 0.999) in the
    recipe, as the reference code.) Two optional terms, off by default (the reference is
    unpaired): ``lambda_id |G(x, c) - x|`` (identity under the own label) and, because our
    domains are synthetic degradations of known clean patches, ``lambda_pair
    |G(x_lq, c') - x_clean|`` on the low-quality samples. The recipe's ``gan.discriminator``
    is the critic (``stargan_discriminator``) and ``gan.optimizer`` its optimiser.

    ``component: intrinsic`` trains on the intrinsic components of the images instead (MDIE):
    a frozen ``intrinsic_net`` (``intrinsic_weights``) decomposes each image, and each sample
    trains on a component that ``routing`` sends its domain to (default the seed's,
    :data:`isplab.models.stargan.SEED_ROUTING`: texture and noise on the shading, shown as a
    grey image by :func:`isplab.models.intrinsic.shading_to_image`; colour on the albedo or the
    shading), one component per sample, at random where a domain has two.

    Validation: ``psnr`` of the low-quality validation items translated to high quality
    against their clean photos, and ``psnr_input`` of the untouched inputs (component mode
    reconstructs the image from the translated components first); the same per domain
    (``psnr_colour``, ``psnr_input_colour``, ...) for the domains the validation set holds.
    """

    loss_keys = ["d_adv", "d_cls", "d_gp", "g_adv", "g_cls", "g_rec", "g_id", "g_pair"]

    def __init__(self, trainer, lambda_cls: float = 1.0, lambda_rec: float = 10.0,
                 lambda_gp: float = 10.0, n_critic: int = 5, component: str = "image",
                 intrinsic_weights: str | None = None, lambda_id: float = 0.0,
                 lambda_pair: float = 0.0, routing: dict | None = None) -> None:
        super().__init__(trainer)
        if trainer.world > 1:
            raise InvalidInputError("the stargan objective runs on one process (it calls the "
                                    "generator twice per generator step, which DDP does not "
                                    "allow): run it without torchrun")
        if trainer.disc is None:
            raise InvalidInputError("the stargan objective needs gan.discriminator "
                                    "(stargan_discriminator) in the recipe")
        if getattr(trainer.adv, "kind", None) != "wgan":
            raise InvalidInputError("the stargan objective is a WGAN-GP: set gan.loss: wgan")
        if component not in ("image", "intrinsic"):
            raise InvalidInputError(f"component must be image or intrinsic, got {component!r}")
        if component == "intrinsic" and not intrinsic_weights:
            raise InvalidInputError("component: intrinsic needs intrinsic_weights (the "
                                    "intrinsic_net weights file, configs/mdie_intrinsic.yaml)")
        if int(n_critic) < 1:
            raise InvalidInputError(f"n_critic must be >= 1, got {n_critic}")
        self.lambda_cls, self.lambda_rec = float(lambda_cls), float(lambda_rec)
        self.lambda_gp, self.n_critic = float(lambda_gp), int(n_critic)
        self.lambda_id, self.lambda_pair = float(lambda_id), float(lambda_pair)
        self.component = component
        self.intrinsic = None
        if component == "intrinsic":
            self._routing = parse_routing(routing)
            self.intrinsic = load_model(intrinsic_weights).to(trainer.device).eval()
            for p in self.intrinsic.parameters():
                p.requires_grad_(False)

    # -- pieces --
    def _components(self, x: torch.Tensor, use_albedo: torch.Tensor) -> torch.Tensor:
        """Images -> the component each sample trains on (component mode): the albedo where
        ``use_albedo``, else the shading as a grey image."""
        with torch.no_grad():
            a, s = self.intrinsic.decompose(x)
        return torch.where(use_albedo[:, None, None, None], a, shading_to_image(s))

    @staticmethod
    def _labels(quality: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([quality * mask, mask], dim=1)

    def _cls_loss(self, logits: torch.Tensor, quality: torch.Tensor, domain: torch.Tensor
                  ) -> torch.Tensor:
        """BCE with logits on each sample's own domain only (the mask vector's rule)."""
        idx = torch.arange(logits.shape[0], device=logits.device)
        return F.binary_cross_entropy_with_logits(logits[idx, domain], quality[idx, domain])

    def train_step(self, batch, step):
        t = self.trainer
        g = t.generator(step)
        x = t.batch_input(batch)
        mask = batch["mask"].to(x)
        quality = batch["labels"].to(x)
        domain = mask.argmax(1)
        clean = batch["clean"].to(x) if self.lambda_pair > 0 else None
        if self.component == "intrinsic":
            coin = torch.rand(x.shape[0], generator=g) < 0.5
            use_albedo = train_on_albedo(self._routing, domain, coin)
            x = self._components(x, use_albedo)
            if clean is not None:
                clean = self._components(clean, use_albedo)
        target_q = torch.where(mask > 0, 1.0 - quality, torch.zeros_like(quality))
        c_org, c_trg = self._labels(quality, mask), self._labels(target_q, mask)
        gen, critic = t.ddp_model, t.ddp_disc
        t.model.train()
        t.disc.train()

        # critic
        with torch.no_grad():
            fake = gen(x, c_trg)
        real_adv, real_cls = critic(x)
        fake_adv, _ = critic(fake)
        d_adv = t.adv.discriminator(real_adv, fake_adv)
        d_cls = self._cls_loss(real_cls, quality, domain)
        d_gp = gradient_penalty(lambda v: critic(v)[0], x, fake, g)
        d_total = d_adv + self.lambda_cls * d_cls + self.lambda_gp * d_gp
        if not torch.isfinite(d_total):
            return t.skip(step, f"step {step}: non-finite critic loss {float(d_total)}")
        t.optimise(d_total, t.d_opt, t.disc)
        terms = {"d_adv": float(d_adv.detach()), "d_cls": float(d_cls.detach()),
                 "d_gp": float(d_gp.detach())}
        total = float(d_total.detach())

        if step % self.n_critic == 0:
            fake = gen(x, c_trg)
            fake_adv, fake_cls = critic(fake)
            g_adv = t.adv.generator(fake_adv)
            g_cls = self._cls_loss(fake_cls, target_q, domain)
            g_rec = (gen(fake, c_org) - x).abs().mean()
            g_total = g_adv + self.lambda_cls * g_cls + self.lambda_rec * g_rec
            extra = {}
            if self.lambda_id > 0:  # the own label leaves an image unchanged
                extra["g_id"] = (gen(x, c_org) - x).abs().mean()
                g_total = g_total + self.lambda_id * extra["g_id"]
            if clean is not None:  # synthetic domains: the clean patch is known
                lq = batch["lq"].bool().to(x.device)
                if lq.any():
                    extra["g_pair"] = (fake[lq] - clean[lq]).abs().mean()
                    g_total = g_total + self.lambda_pair * extra["g_pair"]
            if not torch.isfinite(g_total):
                return t.skip(step, f"step {step}: non-finite generator loss {float(g_total)}")
            t.optimise(g_total, t.opt, t.model)
            t.step_scheduler()
            terms.update(g_adv=float(g_adv.detach()), g_cls=float(g_cls.detach()),
                         g_rec=float(g_rec.detach()),
                         **{k: float(v.detach()) for k, v in extra.items()})
            total = float(g_total.detach())
        return total, terms

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        t = self.trainer
        model = t.ema.module if t.ema is not None else t.model
        model.eval()
        rows: list[tuple[int, float, float]] = []  # (domain, translated, input) per item
        for batch in t.val_batches():
            x = t.batch_input(batch, "val")
            lq = batch["lq"].bool()
            if not lq.any():
                continue
            x, mask = x[lq], batch["mask"][lq].to(x)
            clean = batch["clean"][lq].to(x)
            target = self._labels(torch.ones_like(mask) * mask, mask)
            if self.component == "intrinsic":
                out = translate_components(self.intrinsic, model, x, [target], self._routing)
            else:
                out = model(x, target).clamp(0, 1)
            rows += zip(mask.argmax(1).tolist(), psnr(out, clean).tolist(),
                        psnr(x, clean).tolist(), strict=True)
        return _psnr_by_domain(rows)
