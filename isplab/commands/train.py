"""``isplab train RECIPE``: run a YAML recipe (single process or under torchrun)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command(
    recipe: Annotated[Path, typer.Argument(help="YAML recipe (configs/*.yaml).")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a recipe key, e.g. --set train.steps=200 "
        "--set data.train.args.patch=128 (value parsed as YAML; repeatable).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Run directory (default: runs/<recipe name>).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue from the newest complete checkpoint in the run "
        "directory (exactly: same losses as an uninterrupted run).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
) -> None:
    """Train a model from a recipe: checkpoints, logs (CSV, TensorBoard) and final weights
    go to the run directory. Under `torchrun --nproc_per_node=N -m isplab.cli train ...` it uses
    DDP (gloo on CPU, NCCL on GPU); only rank 0 writes."""
    from isplab.cli import _setup_logging, err
    from isplab.cli import out as console
    from isplab.errors import IsplabError
    from isplab.train import Trainer, load_recipe

    _setup_logging(debug, quiet)
    try:
        r = load_recipe(recipe, set_ or [])
        run_dir = out or Path("runs") / str(r["name"])
        trainer = Trainer(r, run_dir, resume=resume, progress=not quiet, console=err)
        summary = trainer.run()
    except (IsplabError, FileExistsError) as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if trainer.rank == 0:  # the one line a script or a user reads, -q or not
        val = ", ".join(f"{k} {v:.4g}" for k, v in (summary["validation"] or {}).items())
        stop = " (stopped by train.max_seconds: --resume continues)" \
            if summary.get("stopped_by") else ""
        console.print(f"trained {summary['steps']} steps in {summary['seconds']:.1f} s{stop}; "
                  f"weights: {summary['weights']}; validation: {val or '-'}", soft_wrap=True,
                  highlight=False, markup=False)
