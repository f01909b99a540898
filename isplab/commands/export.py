"""``isplab export``: a zoo model (with weights) to ONNX or TorchScript, verified."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command(
    model: Annotated[str, typer.Argument(
        help="Zoo name (isplab models), a weights file, or a training run folder.")],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="model.onnx, or model.pt for TorchScript.")],
    weights: Annotated[Path | None, typer.Option(
        "--weights", help="safetensors weights for a zoo name.")] = None,
    tile: Annotated[tuple[int, int], typer.Option(
        "--tile", help="Input tile H W in packed pixels the graph is traced on.")] = (256, 256),
    dynamic: Annotated[bool, typer.Option(
        "--dynamic", help="Symbolic batch/height/width (any tile size at run time); a context "
        "input is always free-sized.")] = False,
    torchscript: Annotated[bool, typer.Option(
        "--torchscript", help="Write TorchScript (torch.jit) instead of ONNX.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing "
                                            "output file.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")
                     ] = False,
) -> None:
    """Export a model to ONNX (checked against torch with onnxruntime) or TorchScript.

    Inputs of the ONNX graph: "input", a tile of the packed frame whose sides are multiples of
    the "stride" in the file's metadata; output: "output". A model with image-global
    operations (kpn_isp's colour matrix, instance norms, DeepISP's transform) has a second
    input, "context": the whole frame area-downscaled to a longest side of "context_size"
    (metadata, 512), padded to the stride. The graph computes the global values from it, so
    every tile gets the same ones and develop --onnx equals the torch develop. One file.
    """
    import torch

    from isplab.cli import _setup_logging, err, out
    from isplab.errors import IsplabError
    from isplab.infer.tiled import FrameContext, has_global_ops
    from isplab.models import is_registered, model_info, resolve
    from isplab.models.export import export_onnx, export_torchscript, run_onnx

    _setup_logging(debug)
    context = None
    try:
        if is_registered(model) and weights is None:
            err.print(f"[yellow]warning:[/] no --weights: exporting {model} with random "
                      "weights")
            torch.manual_seed(0)
        net = resolve(model, weights=weights, allow_random=True)
        name = getattr(net, "isplab_name", model)
        channels = model_info(name)["in_channels"]
        x = torch.rand(1, channels, *tile, generator=torch.Generator().manual_seed(0))
        net.eval()
        if torchscript:
            export_torchscript(net, output, x, overwrite=overwrite)
            loaded = torch.jit.load(str(output))
            with torch.no_grad():
                error = float((loaded(x) - net(x)).abs().max())
        else:
            if has_global_ops(net):  # the global values come from a second input
                net = FrameContext(net).eval()
                # at least 64 px: DeepISP's global transform traces its direct path there
                context = torch.rand(1, channels, *(max(t, 64) for t in tile),
                                     generator=torch.Generator().manual_seed(1))
            export_onnx(net, output, x, dynamic=dynamic, overwrite=overwrite, context=context)
            with torch.no_grad():
                ref = net(x) if context is None else net(x, context)
            error = float((run_onnx(output, x, context) - ref).abs().max())
    except (IsplabError, FileExistsError) as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    inputs = "" if context is None else " (inputs: input, context)"
    out.print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB){inputs}; max |export - "
              f"torch| on a {tile[0]}x{tile[1]} tile: {error:.2e}")
    if error > 1e-4:
        err.print("[red]the export differs from torch by more than 1e-4[/]")
        raise typer.Exit(1)
