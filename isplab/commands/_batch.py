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
- ``--jobs N`` runs N processes, this one and N - 1 workers, each one file at a time
  (outputs identical to ``--jobs 1``); a worker that dies (a crash in native code) fails
  the files it held and this process develops the rest; ``--shard K/N`` keeps the K-th of
  N deterministic parts of the inputs.

Nothing here imports torch: the classical develop path stays light.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterable
from contextlib import contextmanager
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
_SENT = b""  # in a worker process: the pickled (worker, debug) it runs
_PRESTARTED = None  # workers forked by prestart() for the coming run_tasks


def _init_worker(threads: int, forked_clean: bool = False) -> None:
    """A worker process's set-up: ``threads`` for OpenMP, OpenCV and torch. A worker forked
    before its parent loaded rawpy (:func:`prestart`) silences rawpy's warning about fork,
    which is about OpenMP pools copied from a parent that had used them."""
    if forked_clean:
        import warnings

        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message="rawpy is being used in a process created by "
                                        "multiprocessing with the 'fork'")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _run_sent(task: Task, sent: bytes) -> tuple[Task, bool, list[str]]:
    """:func:`_run_one` in a worker process, given the pickled ``(worker, debug)``: unpickled
    once per process (the worker builds its pipeline on its first file), so workers started
    before the batch's settings were final still run them."""
    global _WORKER, _DEBUG, _SENT
    if sent != _SENT:
        import pickle

        (_WORKER, _DEBUG), _SENT = pickle.loads(sent), sent
    return _run_one(task)


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
    """Run ``worker(task)`` on every task in ``jobs`` processes, reporting each result to
    ``on_result(task, ok, notes_or_failure_lines)`` as it completes.

    This process is one of the ``jobs``: it takes tasks from the same queue as the
    ``jobs - 1`` worker processes while they start, so their start-up costs no wall time.
    Each worker gets its next task the moment it finishes one; callbacks run in this
    thread. ``worker`` must be picklable for ``jobs > 1`` (a module-level class instance
    holding plain settings, building its pipeline on first use in each process)."""
    jobs = max(1, min(int(jobs), len(tasks)))
    global _WORKER, _DEBUG, _PRESTARTED
    _WORKER, _DEBUG = worker, debug
    prestarted, _PRESTARTED = _PRESTARTED, None
    if jobs == 1:
        if prestarted is not None:
            prestarted.shutdown(wait=False)
        for task in tasks:
            if on_start:
                on_start(task)
            on_result(*_run_one(task))
        return
    with _one_thread():
        _Shared(tasks, worker, jobs, debug, prestarted).run(jobs, on_result, on_start)


class _Shared:
    """One queue of tasks for this process and a pool of ``jobs - 1`` workers (``run_tasks``
    with ``jobs > 1``). Each worker gets its next task from the pool's thread the moment it
    finishes one; results and starts reach the callbacks in this thread."""

    def __init__(self, tasks: list[Task], worker: Callable[[Task], list[str]], jobs: int,
                 debug: bool, pool=None):
        import pickle
        import queue
        import threading
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        self.todo, self.lock = deque(tasks), threading.Lock()
        self.events: queue.SimpleQueue = queue.SimpleQueue()  # ("start"|"done"|"wake", item)
        self.broken = threading.Event()  # a worker died: this process runs the rest
        self.outstanding = len(tasks)
        self.sent = pickle.dumps((worker, debug))
        self.pool = pool or ProcessPoolExecutor(jobs - 1, mp_context=_context(worker),
                                                initializer=_init_worker, initargs=(1,))

    def take(self, for_pool: bool) -> Task | None:
        with self.lock:
            if not self.todo or (for_pool and self.broken.is_set()):
                return None
            return self.todo.popleft()

    def submit(self) -> None:
        """Hand the next task to the pool (from this thread, or the pool's)."""
        task = self.take(for_pool=True)
        if task is None:
            return
        self.events.put(("start", task))
        try:
            future = self.pool.submit(_run_sent, task, self.sent)
        except RuntimeError:  # the pool broke: this process runs it
            self.broken.set()
            with self.lock:
                self.todo.appendleft(task)
            self.events.put(("wake", None))
            return
        future.add_done_callback(lambda f, t=task: self.finished(f, t))

    def finished(self, future, task: Task) -> None:
        try:
            self.events.put(("done", future.result()))
        except Exception as exc:  # a worker died (a crash in native code): its file failed
            self.broken.set()
            self.events.put(("done", (task, False, [
                f"{task.source}: the worker process running it died ({exc})"])))
        else:
            self.submit()

    def drain(self, block: bool, on_result, on_start) -> None:
        """Report what the workers did (waiting for one result when ``block``)."""
        import queue

        while self.outstanding:
            try:
                kind, item = self.events.get(block=block)
            except queue.Empty:
                return
            if kind == "wake":  # a task came back to the queue
                return
            if kind == "start":
                if on_start:
                    on_start(item)
            else:
                self.outstanding -= 1
                on_result(*item)
                block = False

    def run(self, jobs: int, on_result, on_start) -> None:
        import threading

        # Starting a worker waits for the fork server to import the stack: a thread does
        # it while this process works through the first tasks.
        starter = threading.Thread(target=lambda: [self.submit() for _ in range(jobs - 1)],
                                   daemon=True)
        try:
            starter.start()
            while self.outstanding:
                task = self.take(for_pool=False)
                if task is None:  # the rest is in the workers: wait for them
                    self.drain(True, on_result, on_start)
                    continue
                if on_start:
                    on_start(task)
                result = _run_one(task)
                self.outstanding -= 1
                on_result(*result)
                self.drain(False, on_result, on_start)
            starter.join()
        except BaseException:
            self.broken.set()
            self.pool.shutdown(wait=False, cancel_futures=True)
            raise
        self.pool.shutdown(wait=True)


def _context(worker: Callable[[Task], list[str]]):
    """The multiprocessing context of worker processes started by the batch itself. Not
    fork: a parent that has used LibRaw (OpenMP) is not safe to fork (rawpy warns in forked
    children); workers fork from a clean server that imported the stack once. A parent that
    holds torch spawns them. (:func:`prestart` forks them earlier, while that is safe.)"""
    import multiprocessing as mp

    if "torch" in sys.modules:
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "cv2", "rawpy", type(worker).__module__])
    return ctx


def prestart(worker: Callable[[Task], list[str]], jobs: int, inputs: Iterable[Path]) -> None:
    """Start :func:`run_tasks`'s workers now, when the batch will likely run more than one
    process (``jobs > 1`` and a folder or several inputs), so that their start-up overlaps
    this process's. In a process that has not loaded rawpy (LibRaw's OpenMP) or torch yet,
    the ``jobs - 1`` workers fork from it at once (safe: no OpenMP or torch thread pool
    exists to be copied half-way); they take the batch's settings with their first file.
    Otherwise the fork server starts importing the stack. Nothing happens for one file."""
    global _PRESTARTED
    inputs = list(inputs)
    if jobs < 2 or not (len(inputs) > 1 or any(Path(p).is_dir() for p in inputs)):
        return
    if "rawpy" in sys.modules or "torch" in sys.modules:
        if _context(worker).get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    if _PRESTARTED is not None:
        _PRESTARTED.shutdown(wait=False)
    _PRESTARTED = ProcessPoolExecutor(jobs - 1, mp_context=mp.get_context("fork"),
                                      initializer=_init_worker, initargs=(1, True))
    _PRESTARTED.submit(int)  # forks the workers here, now


@contextmanager
def _one_thread():
    """This process runs one thread of OpenCV (and torch, when loaded) while it shares the
    cores with worker processes; the previous settings come back afterwards."""
    import cv2

    cv = cv2.getNumThreads()
    torch = sys.modules.get("torch")
    th = torch.get_num_threads() if torch is not None else None
    cv2.setNumThreads(1)
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv)
        if torch is not None and th is not None:
            torch.set_num_threads(th)


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
