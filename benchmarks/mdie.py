"""MDIE benchmark: intrinsic decomposition vs classical baselines, and the translator on the
real pairs (all-ones vs sequential inference) vs the input and classical methods.

Decomposition (held-out Kodak24 photos, longer side ``--size``; never seen in training):

- ``recon dB``: PSNR of ``A * S`` against the linear photo;
- ``albedo SI``: scale-invariant MSE between the albedo of the photo and of a synthetically
  re-lit copy (``isplab.enhance.intrinsic.synthetic_shading``; lower = steadier), over the
  pixels the re-lighting did not clip, for ``intrinsic_net``, LIME-style and multi-scale
  Retinex;
- where the degradations live: mean ``|change|`` of log albedo and log shading when the same
  photos get one random degradation of each domain (``isplab.synth.degradations.degrade``),
  the evidence for the translator's routing (``isplab.enhance.mdie.parse_routing``).

Translation (real pairs, evaluation only; centre crops of ``--crop`` pixels):

- noise: SIDD noisy -> clean sRGB, PSNR / SSIM; classical baseline: bilateral denoise
  (``isplab.classic.denoise``, range sigma ``--sigma``);
- texture: City100 iPhone X short focal L (upscaled) -> long focal H, PSNR / SSIM; classical
  baseline: unsharp masking;
- colour: INTEL-TAU IMX135 camera RGB (not white balanced): angular error of the illuminant
  implied by the method (per-channel mean of linear input over linear output) against the
  ground truth; classical baseline: gray world.

    python benchmarks/mdie.py --intrinsic runs/mdie_intrinsic --translator runs/mdie_translator
        [--image-translator runs/stargan_image] [--compare NAME=RUN ...] [--html mdie.html]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from isplab.classic import denoise, gray_world_gains, srgb_gamma, srgb_to_linear
from isplab.data.domains import city100_pairs, intel_tau_samples, sidd_pairs
from isplab.enhance import intrinsic as I
from isplab.enhance.mdie import load_mdie, shading_to_image
from isplab.io import read_image, to_uint
from isplab.metrics import angular_error, psnr, ssim
from isplab.models import load_model
from isplab.synth.degradations import DOMAINS, degrade

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load(path: Path, size: int) -> torch.Tensor:
    x = read_image(path)
    h, w = x.shape[-2:]
    s = size / max(h, w)
    if s < 1:
        x = F.interpolate(x, size=(round(h * s) // 8 * 8, round(w * s) // 8 * 8), mode="area")
    return x.clamp(0, 1)


def mean(values) -> float:
    return statistics.fmean(float(v) for v in values)


def emit(lines: list[str], text: str) -> None:
    print(text, flush=True)
    lines.append(text)


def decomposition_table(net, photos: list[torch.Tensor]) -> list[str]:
    def netdec(lin, srgb):
        return net.decompose(srgb)

    methods = {
        "intrinsic_net": netdec,
        "LIME-style (max RGB + guided filter)": lambda lin, srgb: I.lime_decompose(lin),
        "multi-scale Retinex": lambda lin, srgb: I.multiscale_retinex(lin),
    }
    lines: list[str] = []
    emit(lines, "| method | recon dB (mean) | albedo SI x1e3 (mean) | s / image |")
    emit(lines, "|---|---|---|---|")
    for name, fn in methods.items():
        recon, si, secs = [], [], []
        for i, x in enumerate(photos):
            lin = srgb_to_linear(x)
            t0 = time.perf_counter()
            a, s = fn(lin, x)
            secs.append(time.perf_counter() - t0)
            recon.append(psnr((a * s).clamp(0, 1), lin))
            g = torch.Generator().manual_seed(100 + i)
            relit, valid = I.reshade(x, I.synthetic_shading(1, *x.shape[-2:], g))
            a2, _ = fn(srgb_to_linear(relit), relit)
            si.append(I.scale_invariant_error(a2, a, valid) * 1e3)
        emit(lines, f"| {name} | {mean(recon):.2f} | {mean(si):.3f} | {mean(secs):.3f} |")
    return lines


def unsharp(x: torch.Tensor, amount: float = 1.0, sigma: float = 1.5) -> torch.Tensor:
    import kornia

    k = int(2 * round(3 * sigma) + 1)
    blur = kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")
    return (x + amount * (x - blur)).clamp(0, 1)


def crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = min(h, size) // 4 * 4, min(w, size) // 4 * 4
    y, z = (h - ch) // 2, (w - cw) // 2
    return x[..., y:y + ch, z:z + cw]


def pairs_table(title: str, pairs, methods, size: int, shots: list) -> list[str]:
    """Markdown lines; ``shots`` gets (caption, image) of the first pair for each method."""
    lines: list[str] = []
    print(f"\n{title}\n")
    emit(lines, "| method | PSNR mean | SSIM mean | s / image |")
    emit(lines, "|---|---|---|---|")
    for name, fn in methods.items():
        p, s, secs = [], [], []
        for i, item in enumerate(pairs):
            x, y = crop(item["input"][None], size), crop(item["target"][None], size)
            t0 = time.perf_counter()
            out = fn(x).clamp(0, 1)
            secs.append(time.perf_counter() - t0)
            p.append(psnr(out, y))
            s.append(ssim(out, y))
            if i == 0:
                shots.append((name, to_uint(out, 8)))
                if name == next(iter(methods)):
                    shots.append(("target", to_uint(y, 8)))
        emit(lines, f"| {name} | {mean(p):.2f} | {mean(s):.4f} | {mean(secs):.2f} |")
    return lines


def routing_table(net, photos: list[torch.Tensor], seed: int = 0) -> list[str]:
    """Where each domain's degradation lands in the decomposition: mean |change| of log
    albedo and of log shading between a photo and its degraded copy (``log I = log A +
    log S``), and the shading's share of the two."""
    lines: list[str] = []
    emit(lines, "| domain | mean abs d log albedo | mean abs d log shading | shading share |")
    emit(lines, "|---|---|---|---|")
    def logs(x):
        return [c.clamp_min(1e-4).log() for c in net.decompose(x)]

    g = torch.Generator().manual_seed(seed)
    clean = [logs(x) for x in photos]  # once per photo, shared by the three domains
    for domain in DOMAINS:
        da = ds = 0.0
        for x, (la0, ls0) in zip(photos, clean, strict=True):
            la1, ls1 = logs(degrade(x, domain, g)[0].clamp(0, 1))
            da += float((la1 - la0).abs().mean())
            ds += float((ls1 - ls0).abs().mean())
        da, ds = da / len(photos), ds / len(photos)
        emit(lines, f"| {domain} | {da:.4f} | {ds:.4f} | {100 * ds / (da + ds):.1f} % |")
    return lines


def colour_table(samples, methods) -> list[str]:
    lines: list[str] = []
    print("\nINTEL-TAU IMX135 (10 images), illuminant angular error in degrees\n")
    emit(lines, "| method | mean | median | max |")
    emit(lines, "|---|---|---|---|")
    for name, fn in methods.items():
        errs = []
        for item in samples:
            lin_in = item["camera_rgb"][None]  # linear camera RGB, max 1
            est = fn(lin_in)
            errs.append(float(angular_error(est, item["illuminant"][None])[0]))
        emit(lines, f"| {name} | {statistics.fmean(errs):.2f} | {statistics.median(errs):.2f} | "
                    f"{max(errs):.2f} |")
    return lines


def implied_illuminant(enhance):
    """Illuminant implied by an sRGB->sRGB method on linear camera RGB: the input is shown
    gamma-encoded, the output decoded; ``mean(in) / mean(out)`` per channel."""
    def est(lin_in: torch.Tensor) -> torch.Tensor:
        out = srgb_to_linear(enhance(srgb_gamma(lin_in)).clamp(0, 1))
        return lin_in.mean((2, 3)) / out.mean((2, 3)).clamp(min=1e-6)

    return est


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--intrinsic", type=Path, default=Path("runs/mdie_intrinsic"))
    ap.add_argument("--translator", type=Path, default=Path("runs/mdie_translator"))
    ap.add_argument("--image-translator", type=Path, default=None,
                    help="a translator trained with component: image, for comparison")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=PATH",
                    help="another translator (weights or run folder) to add to the tables "
                         "as NAME (repeatable), e.g. one trained with the seed's routing")
    ap.add_argument("--photos", type=int, default=8, help="Kodak24 photos for decomposition")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--sigma", type=float, default=0.06, help="bilateral range sigma")
    ap.add_argument("--html", type=Path, default=None, help="write an HTML report here")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ipath = args.intrinsic / "model.safetensors" if args.intrinsic.is_dir() else args.intrinsic
    net = load_model(ipath).eval()
    mdie = load_mdie(args.translator, ipath)
    others = {}
    if args.image_translator is not None:
        others["StarGAN on the image (no decomposition)"] = load_mdie(args.image_translator)
    for spec in args.compare:
        name, sep, path = spec.partition("=")
        if not sep:
            ap.error(f"--compare takes NAME=PATH, got {spec!r}")
        others[name] = load_mdie(Path(path))

    print(f"# MDIE — intrinsic {ipath}, translator {args.translator}, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads)")
    with torch.no_grad():
        photos = [load(p, args.size) for p in sorted((DATA / "kodak24").glob("*.png"))
                  [: args.photos]]
        head = f"Decomposition on {len(photos)} Kodak24 photos (longer side {args.size})"
        print(f"\n{head}\n")
        sections = [{"title": head, "text": "\n".join(decomposition_table(net, photos))}]
        a, sh = net.decompose(photos[0])
        la, ls = I.lime_decompose(srgb_to_linear(photos[0]))
        sections[0]["images"] = [
            ("photo", to_uint(photos[0], 8)),
            ("intrinsic_net albedo", to_uint(srgb_gamma(a.clamp(0, 1)), 8)),
            ("intrinsic_net shading", to_uint(shading_to_image(sh), 8)),
            ("LIME-style albedo", to_uint(srgb_gamma(la), 8)),
            ("LIME-style shading", to_uint(shading_to_image(ls), 8))]
        head = (f"Where the degradations live: one random degradation per domain of the same "
                f"{len(photos)} photos")
        print(f"\n{head}\n")
        sections.append({"title": head, "text": "\n".join(routing_table(net, photos))})
        print(f"\ntranslator routing (domain: on albedo, on shading): "
              f"{dict(zip(DOMAINS, mdie.routing, strict=True))}")

        def mdie_methods(classic_name, classic_fn, domain):
            m = {"input (no change)": lambda x: x, classic_name: classic_fn}
            for name, sys in {"MDIE": mdie, **others}.items():
                m[f"{name} all-ones"] = lambda x, s=sys: s.enhance(x, "all")
                m[f"{name} sequential (colour, texture, noise)"] = (
                    lambda x, s=sys: s.enhance(x, "sequential"))
                m[f"{name} {domain} label only"] = lambda x, s=sys: s.enhance(x, domain)
            return m

        for title, pairs, classic, domain in (
                (f"SIDD noisy -> clean ({args.crop} px centre crops)", sidd_pairs(),
                 (f"bilateral denoise (sigma {args.sigma})", lambda x: denoise(x, args.sigma)),
                 "noise"),
                (f"City100 iPhone X short -> long focal ({args.crop} px centre crops)",
                 city100_pairs(), ("unsharp mask (sigma 1.5, amount 1)", unsharp), "texture")):
            shots: list = []
            text = "\n".join(pairs_table(title, pairs, mdie_methods(*classic, domain), args.crop,
                                         shots))
            sections.append({"title": title, "text": text, "images": shots})
        colour = {"input (no change)": lambda lin: torch.ones(lin.shape[0], 3),
                  "gray world": lambda lin: 1.0 / gray_world_gains(lin)}
        for name, sys in {"MDIE": mdie, **others}.items():
            for mode, label in (("all", "all-ones"), ("sequential", "sequential"),
                                ("colour", "colour label only")):
                colour[f"{name} {label}"] = implied_illuminant(
                    lambda x, s=sys, m=mode: s.enhance(x, m))
        tau = intel_tau_samples()
        text = "\n".join(colour_table(tau, colour))
        first = srgb_gamma(tau[0]["camera_rgb"][None])
        sections.append({"title": "INTEL-TAU IMX135: illuminant angular error (degrees)",
                         "text": text, "images": [
                             ("camera RGB (not white balanced)", to_uint(first, 8)),
                             ("gray world", to_uint(srgb_gamma(
                                 tau[0]["camera_rgb"][None] * gray_world_gains(
                                     tau[0]["camera_rgb"][None])[:, :, None, None]).clamp(0, 1),
                                 8)),
                             ("MDIE all-ones", to_uint(mdie.enhance(first, "all"), 8)),
                             ("MDIE sequential", to_uint(mdie.enhance(first, "sequential"),
                                                         8)),
                             ("MDIE colour label only", to_uint(mdie.enhance(first, "colour"),
                                                                8))]})
    if args.html:
        from isplab.report import gallery_html

        print("report:", gallery_html(args.html, "MDIE benchmark", sections,
                                      intro=f"intrinsic {ipath}; translator {args.translator}"))


if __name__ == "__main__":
    main()
