"""``isplab enhance``: enhance sRGB photos with the MPSE or MDIE pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from isplab.commands import _options as opt


class Pipeline(str, Enum):
    mpse = "mpse"
    mdie = "mdie"


class Post(str, Enum):
    none = "none"
    he = "he"
    clahe = "clahe"
    lime = "lime"
    gamma = "gamma"


class MdieMode(str, Enum):
    all = "all"
    sequential = "sequential"
    colour = "colour"
    texture = "texture"
    noise = "noise"


class Fmt(str, Enum):
    png = "png"
    tiff = "tiff"
    jpg = "jpg"


def _iterations(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--iterations takes two counts 'a,b', got {text!r}") from None
    if a < 0 or b < 0:
        raise typer.BadParameter("--iterations must be >= 0")
    return a, b


def _mask_for(masks: Path, f: Path) -> Path:
    if masks.is_dir():
        for suffix in (".png", ".PNG"):
            cand = masks / f"{f.stem}{suffix}"
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"no mask {f.stem}.png in {masks}")
    return masks


def command(
    inputs: Annotated[list[Path], typer.Argument(
        help="sRGB photos (png, jpg, tif) or folders of them.", show_default=False)],
    output: opt.OutputDir,
    pipeline: Annotated[Pipeline, typer.Option(
        help="mpse: model -> style transfer -> post-processing; mdie: intrinsic + StarGAN."
    )] = Pipeline.mpse,
    model: Annotated[Path | None, typer.Option(
        "--model", help="Trained weights (.safetensors): MPSE phase 1 (an sRGB->sRGB zoo "
        "model such as dped_plus_rgb) or the MDIE translator (weights or run folder of "
        "configs/mdie_translator.yaml).")] = None,
    intrinsic: Annotated[Path | None, typer.Option(
        "--intrinsic", help="MDIE: the intrinsic_net weights (default: the ones recorded "
        "with the translator).")] = None,
    reference: Annotated[Path | None, typer.Option(
        "--reference", help="Style reference photo (MPSE phase 2).")] = None,
    references: Annotated[Path | None, typer.Option(
        "--references", help="Folder of candidate references: the closest one is used.")
    ] = None,
    masks: Annotated[Path | None, typer.Option(
        "--masks", help="Colour-coded content mask (Deep Photo Style Transfer palette), or a "
        "folder of <input stem>.png masks; needs --reference-masks.")] = None,
    reference_masks: Annotated[Path | None, typer.Option(
        "--reference-masks", help="Colour-coded mask of the reference.")] = None,
    post: Annotated[Post, typer.Option(
        help="Post-processing: none, he (global HE of L*), clahe (L*), lime, gamma (linear).")
    ] = Post.none,
    vgg_weights: Annotated[Path | None, typer.Option(
        "--vgg-weights", help="torchvision's vgg19-dcbb9e9d.pth (file or folder).")] = None,
    random_vgg: Annotated[bool, typer.Option(
        "--random-vgg", help="Random VGG-19 (smoke tests only: not perceptual).")] = False,
    iterations: Annotated[str, typer.Option(
        help="L-BFGS iterations of style stage 1 (no matting) and stage 2 (matting).")
    ] = "200,200",
    size: Annotated[int | None, typer.Option(
        "--size", help="Downscale so that the longer side is at most this (pixels).")] = None,
    mdie_mode: Annotated[MdieMode, typer.Option(
        help="MDIE: all domains at once, sequential colour -> texture -> noise, or one "
             "domain alone (colour, texture or noise).")
    ] = MdieMode.all,
    fmt: Annotated[Fmt, typer.Option("--format", help="Output file format.")] = Fmt.png,
    overwrite: opt.Overwrite = False,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", help="Worker processes, each one photo at a time (default 1: "
        "style transfer is memory-hungry).", rich_help_panel=opt.BATCH_PANEL,
        show_default=False)] = None,
    shard: opt.Shard = None,
    quiet: opt.Quiet = False,
    debug: opt.Debug = False,
) -> None:
    """Enhance photos into OUTPUT (MPSE: trained model, semantic style transfer,
    post-processing; MDIE: multi-domain enhancement).

    A file that cannot be read or enhanced is reported in one line and skipped; the exit
    code is 1 if any file failed.
    """
    from isplab.cli import _setup_logging, err

    _setup_logging(debug, quiet)
    _check_options(pipeline, model, reference, references, masks, reference_masks, post, size)
    worker = EnhanceWorker(dict(
        pipeline=pipeline.value, model=model, intrinsic=intrinsic, reference=reference,
        references=references, masks=masks, reference_masks=reference_masks,
        post=post.value, vgg_weights=vgg_weights, random_vgg=random_vgg,
        iterations=_iterations(iterations), size=size, mdie_mode=mdie_mode.value,
        overwrite=overwrite))
    protected = [p for p in (reference, references, reference_masks, masks)
                 if p is not None and p.is_file()]
    raise typer.Exit(_run(worker, inputs, output, fmt, protected, jobs, shard, quiet, debug,
                          err))


def _check_options(pipeline, model, reference, references, masks, reference_masks, post,
                   size) -> None:
    """Refuse option combinations that cannot work (or would do nothing), before any work."""
    if reference is not None and references is not None:
        raise typer.BadParameter("give --reference or --references, not both")
    if (masks is None) != (reference_masks is None):
        raise typer.BadParameter("--masks and --reference-masks go together")
    if masks is not None and reference is None:
        raise typer.BadParameter("--masks needs --reference (the reference's mask must match)")
    if size is not None and size < 16:
        raise typer.BadParameter("--size must be >= 16")
    if pipeline is Pipeline.mpse and model is None and reference is None \
            and references is None and post is Post.none:
        raise typer.BadParameter("nothing to do: give --model (a trained enhancer), "
                                 "--reference / --references (style transfer), or --post "
                                 "(he, clahe, lime, gamma); or --pipeline mdie --model W")


def _run(worker: EnhanceWorker, inputs, output, fmt, protected, jobs, shard, quiet, debug,
         err) -> int:
    from rich.markup import escape

    from isplab.commands import _batch
    from isplab.errors import IsplabError
    from isplab.formats import IMAGE_SUFFIXES, OUTPUT_FORMATS

    try:
        worker.build()  # bad weights / references fail once, before any file
        parts = _batch.parse_shard(shard)
        folder = _batch.OutputFolder(output)
        folder.prepare()
    except IsplabError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return 2
    files, problems = _batch.collect(inputs, IMAGE_SUFFIXES, what="photos")
    plan = _batch.plan_outputs(_batch.select_shard(files, parts), output,
                               OUTPUT_FORMATS[fmt.value], worker.settings["overwrite"],
                               protected=protected)
    n = 1 if jobs is None else int(opt.finite(jobs, "--jobs", low=1))
    return _batch.run_batch("enhance", "enhanced", plan, worker, jobs=n, quiet=quiet,
                            debug=debug, console=err, problems=problems, folder=folder)


@dataclass
class EnhanceWorker:
    """Enhances one photo (picklable settings; models loaded once per process)."""

    settings: dict[str, Any]
    _loaded: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": None}

    def build(self) -> dict[str, Any]:
        if self._loaded is not None:
            return self._loaded
        from isplab.enhance.pipeline import load_enhancer, resize_max_side
        from isplab.errors import IsplabError
        from isplab.io import read_image

        s, loaded = self.settings, {}
        if s["pipeline"] == "mdie":
            from isplab.enhance.mdie import load_mdie

            if s["model"] is None:
                raise IsplabError("--pipeline mdie needs --model: the translator trained by "
                                  "isplab train configs/mdie_translator.yaml")
            loaded["mdie"] = load_mdie(s["model"], s["intrinsic"])
        else:
            loaded["net"] = load_enhancer(s["model"]) if s["model"] is not None else None
            loaded["ref"] = None if s["reference"] is None else \
                resize_max_side(read_image(s["reference"]), s["size"])
            if s["references"] is not None and not Path(s["references"]).is_dir():
                raise IsplabError("not a folder of reference images", s["references"])
            loaded["vgg"] = None
            if (s["reference"] is not None or s["references"] is not None) \
                    and not s["random_vgg"]:
                from isplab.enhance.style import resolve_vgg

                loaded["vgg"] = resolve_vgg(s["vgg_weights"])  # fail early, naming it
            if s["masks"] is not None and not Path(s["masks"]).exists():
                raise IsplabError("no such mask file or folder", s["masks"])
        self._loaded = loaded
        return loaded

    def __call__(self, task) -> list[str]:
        from isplab.enhance.pipeline import enhance_mpse, resize_max_side
        from isplab.io import read_image, write_image

        s, loaded = self.settings, self.build()
        image = resize_max_side(read_image(task.source), s["size"])
        if s["pipeline"] == "mdie":
            mdie = loaded["mdie"]
            result = mdie.enhance(image, s["mdie_mode"])
            notes = [f"MDIE ({s['mdie_mode']}"
                     f"{', intrinsic components' if mdie.intrinsic else ', image'})"]
        else:
            pair = None if s["masks"] is None else \
                (_mask_for(Path(s["masks"]), task.source), s["reference_masks"])
            res = enhance_mpse(image, model=loaded["net"], reference=loaded["ref"],
                               references=s["references"], masks=pair, post=s["post"],
                               vgg=loaded["vgg"], random_vgg=s["random_vgg"],
                               iterations=s["iterations"], input_path=task.source)
            result, notes = res.image, res.notes
        write_image(task.target, result, overwrite=s["overwrite"])
        return list(notes)
