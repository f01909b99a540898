"""A run's logs (rank 0 only): ``train_log.csv``, ``val_log.csv`` and, when the
``tensorboard`` extra is installed and ``train.tensorboard`` is on, TensorBoard scalars.

A resumed run first drops the rows after the checkpoint it starts from, so the logs read as
one uninterrupted run.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

from isplab.io import atomic_write

log = logging.getLogger("isplab.train")


class RunLogs:
    """The CSV (and TensorBoard) logs of the run directory ``out``.

    Args:
        out: the run directory.
        loss_keys: the objective's loss terms (the train log's columns between ``loss`` and
            ``skipped``).
        resumed_step: rows after this step are dropped (0 for a fresh run).
        tensorboard: also write TensorBoard scalars (when the package is installed).
    """

    def __init__(self, out: Path, loss_keys: Sequence[str], resumed_step: int,
                 tensorboard: bool = True):
        self.train_csv = out / "train_log.csv"
        self.val_csv = out / "val_log.csv"
        header = ["step", "stage", "lr", "loss", *loss_keys, "skipped", "seconds"]
        self.csv_header = header
        for path in (self.train_csv, self.val_csv):
            if path.exists():  # keep rows up to the checkpoint a resume starts from
                with path.open(newline="") as f:
                    rows = list(csv.reader(f))
                keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= resumed_step]

                def write(tmp: str, keep=keep) -> None:
                    with open(tmp, "w", newline="") as f:
                        csv.writer(f).writerows(keep)

                atomic_write(path, write, overwrite=True)  # a kill here loses no rows
        if not self.train_csv.exists():
            with self.train_csv.open("w", newline="") as f:
                csv.writer(f).writerow(header)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except (ImportError, ModuleNotFoundError):
                log.debug("tensorboard not installed: CSV logs only")

    def train(self, step: int, stage: str, lr: float, loss: float, terms: dict[str, float],
              skipped: int, seconds: float) -> None:
        """One row of ``train_log.csv`` (terms the step did not report are left empty)."""
        row = [step, stage, f"{lr:.6g}", repr(loss)]
        row += [repr(terms[k]) if k in terms else "" for k in self.csv_header[4:-2]]
        row += [skipped, f"{seconds:.3f}"]
        with self.train_csv.open("a", newline="") as f:
            csv.writer(f).writerow(row)
        if self.tb is not None:
            self.tb.add_scalar("train/loss", loss, step)
            for k, v in terms.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def val(self, step: int, stage: str, metrics: dict[str, float]) -> None:
        """One row of ``val_log.csv`` (its header from the first row's metrics)."""
        new = not self.val_csv.exists()
        with self.val_csv.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "stage", *metrics])
            w.writerow([step, stage, *(repr(v) for v in metrics.values())])
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(f"val/{k}", v, step)
        log.info("step %d validation: %s", step, metrics)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
