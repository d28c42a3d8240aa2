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

from edgecompress.core.models.reinitialise import reinitialise
from edgecompress.core.results import FROM_SCRATCH
from edgecompress.core.seeding import seed_everything
from edgecompress.core.tasks.task import Task
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.curves.points import MeasuredPoint, measure_point
from edgecompress.orchestration.pipeline.apply import apply
from edgecompress.orchestration.pipeline.stages import Channels, Factorize, Magnitude, Prune, Random, StageConfig, Unstructured


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

    The baseline is method "baseline"; a smaller dense model is method "dense-small" with its `width`; a
    channel method's architecture trained from scratch is that method + FROM_SCRATCH ("channel-from-scratch").
    """

    method: str
    level: float
    raw: bool = True
    finetuned: bool = True
    width: float | None = None


def _stage(config: Callable[[float], StageConfig]):
    def method(model: nn.Module, level: float, shared: SweepShared) -> nn.Module:
        return apply(model, config(level), shared.task, example_input=shared.example, teacher=shared.model, seed=shared.seed)
    return method


CHANNEL_METHODS = ("channel", "channel8")  # their points are smaller dense architectures, trainable from scratch

# method -> its stage at a level; a level is the fraction removed (for lowrank: of the factorizable layers' parameters)
METHODS: dict[str, Callable[[nn.Module, float, SweepShared], nn.Module]] = {
    "unstructured": _stage(lambda level: Prune(pattern=Unstructured(), criterion=Magnitude(norm=1), scope="global", amount=level)),
    "channel": _stage(lambda level: Prune(pattern=Channels(), criterion=Magnitude(norm=2), amount=level)),
    "channel8": _stage(lambda level: Prune(pattern=Channels(round_to=8), criterion=Magnitude(norm=2), amount=level)),
    "random": _stage(lambda level: Prune(pattern=Unstructured(), criterion=Random(), scope="global", amount=level)),
    "lowrank": _stage(lambda level: Factorize(keep=1.0 - level, convs=True)),
}


def run_sweep_trial(shared: SweepShared, trial: SweepTrial) -> list[MeasuredPoint]:
    """The points of one trial, measured; deterministic for the sweep's seed."""
    task, example = shared.task, shared.example
    if trial.method == "baseline":
        return [measure_point(copy.deepcopy(shared.model), "baseline", 0.0, False, task, example)]
    if trial.method == "dense-small":
        seed_everything(shared.seed)
        return [_trained_from_scratch(shared.small_dense(trial.width), trial, shared, f"dense x{trial.width:.2f}")]
    if trial.method.endswith(FROM_SCRATCH):
        seed_everything(shared.seed)
        source = trial.method.removesuffix(FROM_SCRATCH)
        pruned = reinitialise(METHODS[source](shared.model, trial.level, shared))
        return [_trained_from_scratch(pruned, trial, shared, f"{source} {trial.level:g} from scratch")]
    seed_everything(shared.seed)
    model = METHODS[trial.method](shared.model, trial.level, shared)
    measured = [measure_point(model, trial.method, trial.level, False, task, example)] if trial.raw else []
    if trial.finetuned:
        seed_everything(shared.seed + 1)
        train_epochs(model, task, shared.finetune_epochs, lr=1e-3, description=f"{trial.method} {trial.level:g}",
                     teacher=shared.model, distill_weight=0.5)
        measured.append(measure_point(model, trial.method, trial.level, True, task, example))
    return measured


def _trained_from_scratch(model: nn.Module, trial: SweepTrial, shared: SweepShared, description: str) -> MeasuredPoint:
    """`model` (fresh weights) trained for the pruned points' whole budget, baseline training plus fine-tuning."""
    train_epochs(model, shared.task, shared.baseline_epochs + shared.finetune_epochs, lr=2e-3, description=description)
    return measure_point(model, trial.method, trial.level, True, shared.task, shared.example)
