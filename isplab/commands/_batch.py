"""The batch runner of the verbs that turn input files into output files (develop, enhance,
synth): one file collector, sharding, the output folder's checks, the output plan, worker
processes, progress and the per-file report.

Rules it enforces for every verb:

- the output folder is created (or checked) and probed for writing once, up front: one line
  when it cannot be, before any work;
- an output never replaces an input, two inputs never write one output, and an existing
  output is *skipped* (reported, exit 0) unless ``--overwrite``;
- ``--overwrite`` only replaces images isplab wrote itself (they carry its signature,
  :func:`isplab.io.written_by_isplab`), never a file it did not write: a raw mosaic PNG of
  the user's in the output folder is safe;
- the no-overwrite rule holds at the moment of the rename (:func:`isplab.io.atomic_write`
  links the finished file into place, which fails if a concurrent run got there first);
- hidden temporary files left by killed runs (their process is gone) are removed;
- one bad file is one line and the batch goes on; the exit code is 1 when any file failed;
- ``--jobs N`` runs N worker processes, each one file at a time (outputs identical to
  ``--jobs 1``); ``--shard K/N`` keeps the K-th of N deterministic parts of the inputs.

Nothing here imports torch: the classical develop path stays light.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from isplab.errors import IsplabError
from isplab.io import pid_alive, written_by_isplab


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """:func:`isplab.sharding.parse_shard` (the verbs' import; isplab.sharding, which loads
    hashlib, is imported when a shard is given)."""
    if text is None:
        return None
    from isplab.sharding import parse_shard

    return parse_shard(text)


# --- inputs --------------------------------------------------------------------------------


def collect(inputs: Iterable[Path], suffixes: Iterable[str], what: str = "raw files"
            ) -> tuple[list[Path], list[str]]:
    """Files named (any suffix) and the files with ``suffixes`` directly in named folders
    (sorted, hidden files skipped); problems as one line each."""
    suffixes = {s.lower() for s in suffixes}
    files: list[Path] = []
    problems: list[str] = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                           and f.suffix.lower() in suffixes)
            if not found:
                problems.append(f"{p}: folder holds no {what} ({', '.join(sorted(suffixes))})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif p.exists():
            problems.append(f"{p}: not a regular file")
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems


def shard_key(path: Path) -> str:
    """The key a file is sharded by: ``parent/name`` (the same whatever the mount point)."""
    return f"{path.parent.name}/{path.name}"


def select_shard(files: list[Path], shard: tuple[int, int] | None) -> list[Path]:
    """The files of shard K of N (:mod:`isplab.sharding`), sorted: every input lands in
    exactly one shard, so N machines cover a dataset with no coordinator."""
    ordered = sorted(set(files), key=lambda p: (str(p), p))
    if shard is None:
        return ordered
    from isplab.sharding import in_shard

    return [f for f in ordered if in_shard(shard_key(f), shard)]


# --- the output folder ---------------------------------------------------------------------


@dataclass
class OutputFolder:
    """The ``-o`` folder of a batch: created and probed up front, cleaned of dead runs'
    temporaries, removed again when the run created it and wrote nothing."""

    path: Path
    created: bool = False

    def prepare(self) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise IsplabError("the output exists and is not a folder", p)
        if not p.exists():
            try:
                p.mkdir(parents=True)
                self.created = True
            except FileExistsError:  # a concurrent run made it first
                if not p.is_dir():
                    raise IsplabError("the output exists and is not a folder", p) from None
            except OSError as exc:
                raise IsplabError(f"cannot create the output folder ({exc.strerror})", p) \
                    from None
        try:
            import tempfile

            fd, probe = tempfile.mkstemp(prefix=".isplab-probe.", dir=p)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise IsplabError(f"cannot write into the output folder ({exc.strerror})", p) \
                from None
        remove_leftovers(p)

    def remove_if_unused(self) -> None:
        if self.created:
            try:
                self.path.rmdir()  # only if empty
            except OSError:
                pass


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the hidden temporaries (``.<name>.isplab-<pid>.*``) of runs whose process is
    gone; return what was removed."""
    removed = []
    for f in folder.iterdir():
        if not f.name.startswith(".") or ".isplab-" not in f.name:
            continue
        tag = f.name.split(".isplab-", 1)[1].split(".", 1)[0]
        if tag.isdigit() and not pid_alive(int(tag)):
            try:
                f.unlink()
                removed.append(f)
            except OSError:
                pass
    return removed


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One input file and the output it becomes."""

    source: Path
    target: Path


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def plan_outputs(files: list[Path], output: Path, suffix: str, overwrite: bool,
                 protected: Iterable[Path] = ()) -> Plan:
    """Map each input to ``output/<stem><suffix>`` with the batch rules (module docstring)."""
    plan = Plan()
    inputs = {f.resolve() for f in files} | {Path(p).resolve() for p in protected}
    taken: dict[Path, Path] = {}
    for f in files:
        target = output / f"{f.stem}{suffix}"
        resolved = target.resolve()
        if resolved in inputs:
            plan.failures.append(f"{f}: output {target} would replace an input file")
        elif resolved in taken:
            plan.failures.append(f"{f}: output {target} is already taken by {taken[resolved]} "
                                 "(same file name): write them into separate folders")
        elif target.exists() and not overwrite:
            plan.skipped.append(f"{f}: skipped ({target} exists; --overwrite to replace it)")
        elif target.exists() and not written_by_isplab(target):  # its signature
            plan.failures.append(f"{f}: {target} exists and was not written by isplab: not "
                                 "replaced, even with --overwrite (move it away first)")
        else:
            taken[resolved] = f
            plan.tasks.append(Task(f, target))
    return plan


# --- running -------------------------------------------------------------------------------


def failure_line(exc: BaseException, source: Path) -> str:
    """One line for a failed file: an isplab error's own text (naming the file), else the
    exception's type and message."""
    if isinstance(exc, IsplabError):
        return str(exc) if exc.path is not None else f"{source}: {exc}"
    if isinstance(exc, FileExistsError):
        return f"{source}: {exc} (another run wrote it first)"
    return f"{source}: {exc.__class__.__name__}: {exc}"


_WORKER: Callable[[Task], list[str]] | None = None
_DEBUG = False


def _init_worker(worker: Callable[[Task], list[str]], debug: bool, threads: int) -> None:
    global _WORKER, _DEBUG
    _WORKER, _DEBUG = worker, debug
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _run_one(task: Task) -> tuple[Task, bool, list[str]]:
    """Run the worker on one task; never raises (a failure is the result)."""
    assert _WORKER is not None
    try:
        notes = _WORKER(task)
        return task, True, list(notes or [])
    except Exception as exc:  # one bad file never stops the batch
        lines = [failure_line(exc, task.source)]
        if _DEBUG:
            lines.append(traceback.format_exc())
        return task, False, lines


def run_tasks(tasks: list[Task], worker: Callable[[Task], list[str]], *, jobs: int = 1,
              debug: bool = False, on_result: Callable[[Task, bool, list[str]], None],
              on_start: Callable[[Task], None] | None = None) -> None:
    """Run ``worker(task)`` on every task (in ``jobs`` processes when > 1), reporting each
    result to ``on_result(task, ok, notes_or_failure_lines)`` as it completes.

    ``worker`` must be picklable for ``jobs > 1`` (a module-level class instance holding
    plain settings, building its pipeline on first use in each process)."""
    jobs = max(1, min(int(jobs), len(tasks)))
    if jobs == 1:
        global _WORKER, _DEBUG
        _WORKER, _DEBUG = worker, debug
        for task in tasks:
            if on_start:
                on_start(task)
            on_result(*_run_one(task))
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # not fork: LibRaw (OpenMP) is not fork-safe (rawpy warns in forked children); workers
    # fork from a clean server that imported the stack once. A parent that holds torch spawns.
    method = "forkserver" if "torch" not in sys.modules else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["numpy", "cv2", "rawpy", type(worker).__module__])
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                               initargs=(worker, debug, 1))
    pending = set()
    queue = list(tasks)
    try:
        while queue or pending:
            while queue and len(pending) < jobs:
                task = queue.pop(0)
                if on_start:
                    on_start(task)
                pending.add(pool.submit(_run_one, task))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                on_result(*fut.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def default_jobs() -> int:
    """The machine's cores (the CPUs this process may use)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


# --- the report ----------------------------------------------------------------------------


def escape(text: str) -> str:
    """rich's markup escape (rich imported when something is printed)."""
    from rich.markup import escape

    return escape(text)


class _NoProgress:
    """What a disabled rich ``Progress`` does (``--quiet``), without importing rich."""

    def __init__(self, console):
        self.console = console

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: float | None = None) -> int:
        return 0

    def update(self, task: int, **fields) -> None:
        return None

    def advance(self, task: int, advance: float = 1) -> None:
        return None


def _progress(verb: str, console, quiet: bool):
    """One transient progress bar on ``console`` (none when ``quiet``)."""
    if quiet:
        return _NoProgress(console)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn(f"[bold]{verb}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.description}"), console=console,
                    transient=True)


def run_batch(verb: str, past: str, plan: Plan, worker: Callable[[Task], list[str]], *,
              jobs: int, quiet: bool, debug: bool, console, problems: list[str],
              folder: OutputFolder | None = None) -> int:
    """Run ``plan`` with one progress bar, a line per file (``✓ source -> target`` and its
    notes, or ``✗`` and the reason), then ``N <past>, S skipped, F failed``. Returns the exit
    code: 1 when any file failed (inputs missing included), else 0."""
    failures = list(problems) + plan.failures
    for message in failures:
        console.print(f"[red]✗[/] {escape(message)}", highlight=False)
    if not quiet:
        for message in plan.skipped:
            console.print(f"[yellow]-[/] {escape(message)}", highlight=False)
    done = 0
    with _progress(verb, console, quiet) as progress:
        bar = progress.add_task("", total=len(plan.tasks))

        def started(task: Task) -> None:
            progress.update(bar, description=task.source.name)

        def finished(task: Task, ok: bool, lines: list[str]) -> None:
            nonlocal done
            if ok:
                done += 1
                if not quiet:
                    progress.console.print(f"[green]✓[/] {escape(str(task.source))} -> "
                                           f"{escape(str(task.target))}", highlight=False)
                    for note in lines:
                        progress.console.print(f"    {escape(note)}", highlight=False)
            else:
                failures.append(lines[0])
                progress.console.print(f"[red]✗[/] {escape(lines[0])}", highlight=False)
                for extra in lines[1:]:
                    progress.console.print(extra, markup=False, highlight=False)
            progress.advance(bar)

        try:
            run_tasks(plan.tasks, worker, jobs=jobs, debug=debug, on_result=finished,
                      on_start=started)
        finally:
            if folder is not None and done == 0:
                folder.remove_if_unused()
    if not quiet or failures:
        skipped = f", {len(plan.skipped)} skipped (outputs exist)" if plan.skipped else ""
        console.print(f"{done} {past}, {len(failures)} failed{skipped}")
    for message in failures:
        console.print(f"  failed: {message}", markup=False, highlight=False)
    return 1 if failures else 0
