"""The trials of a sweep: pure functions of (what every worker holds, one small trial description).

A trial builds its model from the shared trained baseline and its own seeds only, so it gives the same point
in this process, in a worker process or on a Ray node. It returns measured points (scores and file bytes);
writing them into the output directory is the driver's job.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from edgecompress.core.seeding import seed_everything
from edgecompress.core.tasks.task import Task
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.curves.points import MeasuredPoint, measure_point
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.lowrank import factorize
from edgecompress.techniques.prune.engine import prune_model


@dataclass(frozen=True)
class SweepShared:
    """Sent to each worker once: the trained baseline, the task and the sweep's settings."""

    model: nn.Module
    task: Task
    example: torch.Tensor
    seed: int
    finetune_epochs: int
    baseline_epochs: int
    small_dense: Callable[[float], nn.Module] | None = None


@dataclass(frozen=True)
class SweepTrial:
    """One method at one level; `raw` and `finetuned` say which of its two points are still missing.

    The baseline is method "baseline"; a smaller dense model is method "dense-small" with its `width`.
    """

    method: str
    level: float
    raw: bool = True
    finetuned: bool = True
    width: float | None = None


def _prune(config: Callable[[float], Prune]):
    def apply(model: nn.Module, level: float, shared: SweepShared) -> None:
        task = shared.task
        prune_model(model, config(level), shared.example, train=lambda *a, **k: None,
                    batches=task.train_loader, loss_fn=task.loss_fn, seed=shared.seed)
    return apply


def _lowrank(model: nn.Module, level: float, shared: SweepShared) -> None:
    """Level = fraction of the factorizable layers' parameters removed (convolutions and Linears, classifier kept)."""
    factorize(model, keep=1.0 - level)


METHODS: dict[str, Callable[[nn.Module, float, SweepShared], None]] = {
    "unstructured": _prune(lambda level: Prune(pattern="unstructured", criterion="l1", scope="global", amount=level)),
    "channel": _prune(lambda level: Prune(pattern="channel", criterion="l2", amount=level)),
    "channel8": _prune(lambda level: Prune(pattern="channel", criterion="l2", amount=level, round_to=8)),
    "random": _prune(lambda level: Prune(pattern="unstructured", criterion="random", scope="global", amount=level)),
    "lowrank": _lowrank,
}


def run_sweep_trial(shared: SweepShared, trial: SweepTrial) -> list[MeasuredPoint]:
    """The points of one trial, measured; deterministic for the sweep's seed."""
    task, example = shared.task, shared.example
    if trial.method == "baseline":
        return [measure_point(copy.deepcopy(shared.model), "baseline", 0.0, False, task, example)]
    if trial.method == "dense-small":
        seed_everything(shared.seed)
        small = shared.small_dense(trial.width)
        train_epochs(small, task, shared.baseline_epochs + shared.finetune_epochs, lr=2e-3, description=f"dense x{trial.width:.2f}")
        return [measure_point(small, "dense-small", trial.level, True, task, example)]
    seed_everything(shared.seed)
    model = copy.deepcopy(shared.model)
    METHODS[trial.method](model, trial.level, shared)
    measured = [measure_point(model, trial.method, trial.level, False, task, example)] if trial.raw else []
    if trial.finetuned:
        seed_everything(shared.seed + 1)
        train_epochs(model, task, shared.finetune_epochs, lr=1e-3, description=f"{trial.method} {trial.level:g}",
                     teacher=shared.model, distill_weight=0.5)
        measured.append(measure_point(model, trial.method, trial.level, True, task, example))
    return measured
