"""Training objectives: what one step of the trainer does.

A recipe's ``objective: {name: ..., **options}`` selects one from :data:`OBJECTIVES`; the
default is ``supervised`` (``losses(model(input), target)``, with the optional GAN of
``gan:``). An objective gets the :class:`~isplab.train.trainer.Trainer` and uses its public
API only (``model``, ``ddp_model``, ``disc``, ``opt``, ``d_opt``, ``autocast()``,
``optimise()``, ``step_scheduler()``, ``skip()``, ``batch_input()``, ``batch_target()``,
``val_batches()``, ``generator()``); it defines

- ``train_step(batch, step) -> (loss, {term: value}) | None`` (None: the step was skipped),
- ``validate() -> {metric: value}`` on the recipe's validation data,
- ``loss_keys`` (the CSV columns).

Everything else (checkpoints and exact resume, logs, validation schedule, best model) stays
the trainer's; under ``torchrun`` supervised and ``intrinsic`` run with DDP, while
``stargan`` (two generator forwards per backward, which DDP does not allow) refuses more than
one process. Randomness inside a step comes from generators keyed by ``(seed, step)``, so a
resumed run repeats the uninterrupted run.

Registered: ``supervised``, ``intrinsic`` (self-supervised albedo/shading decomposition for
``intrinsic_net``), ``stargan`` (StarGAN multi-domain translation, MDIE). A new objective: a
module here with a class decorated ``@OBJECTIVES.register(name)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from isplab.errors import InvalidInputError
from isplab.registry import Registry


def _load() -> None:
    from isplab.train.objectives import intrinsic, stargan, supervised  # noqa: F401


OBJECTIVES: Registry[type] = Registry("objective", loader=_load)


class Objective:
    """Base class: see the module docstring."""

    name = "objective"
    loss_keys: list[str] = []

    def __init__(self, trainer) -> None:
        self.trainer = trainer

    def train_step(self, batch: Mapping[str, Any], step: int):
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        return {}


def list_objectives() -> list[str]:
    return OBJECTIVES.names()


def create_objective(spec: Mapping[str, Any] | None, trainer) -> Objective:
    """The objective of a recipe's ``objective`` entry (``supervised`` when absent)."""
    spec = dict(spec or {})
    name = str(spec.pop("name", "supervised"))
    cls = OBJECTIVES.get(name)
    try:
        return cls(trainer, **spec)
    except TypeError as exc:
        raise InvalidInputError(f"bad options for objective {name!r}: {exc}") from exc
