"""The pruning engine: combine a criterion, a pattern, a scope and a schedule on a model.

`prune_model` is what the pipeline's prune stage calls; `apply_pruning_step` is one scoring-and-masking step,
which the schedules call once (one-shot) or repeatedly (iterative, gradual). Its checks, which refuse bad
settings before any output is written, are in `checks.py`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from edgecompress.core.masks import get_mask, set_mask
from edgecompress.techniques.prune.calibration import take_batches
from edgecompress.techniques.prune.channel import channel_pruner, step_pruner
from edgecompress.techniques.prune.checks import check_prune, user_masks
from edgecompress.techniques.prune.config import Prune
from edgecompress.techniques.prune.criteria import Custom, OwnMasks
from edgecompress.techniques.prune.patterns import Channels, PatternConfig
from edgecompress.techniques.prune.recurrent import RecurrentWeight, remove_hidden_units
from edgecompress.techniques.prune.schedules import SCHEDULES
from edgecompress.techniques.prune.scoring import ScoreContext, load_score_fn
from edgecompress.techniques.prune.selection import weight_owner


@dataclass
class PruneJob:
    """Everything a schedule needs: the model, its selected layers, the settings, and how to train."""

    model: nn.Module
    layers: dict[str, nn.Module]
    config: Prune
    scores: ScoreContext
    train: Callable[..., None]  # train(epochs, callbacks=()) fine-tunes the model with masks held
    example_input: torch.Tensor
    left: dict[str, str] = field(default_factory=dict)  # selected layers left whole, and why

    def amounts(self, fraction_of_target: float) -> dict[str, float]:
        """Per-layer sparsity when `fraction_of_target` of the way (1.0 = the configured amounts)."""
        return {name: target * fraction_of_target for name, target in self.target_amounts().items()}

    def target_amounts(self) -> dict[str, float]:
        out = {}
        for name in self.layers:
            matches = [v for pattern, v in self.config.per_layer.items() if fnmatch.fnmatch(name, pattern)]
            out[name] = matches[-1] if matches else self.config.amount
        return out


def prune_model(
    model: nn.Module,
    config,
    example_input,
    train: Callable[..., None],
    batches=None,
    loss_fn=None,
    seed: int = 0,
    score_fn: Callable | None = None,
    left: dict[str, str] | None = None,
) -> nn.Module:
    """Prune `model` in place as `config` (a `Prune` stage config) says; return it.

    `train(epochs, callbacks=())` is called by the iterative and gradual schedules. `batches` is the
    calibration/training data in any form of `prune/calibration.py` (a DataLoader of (inputs, targets), or
    dicts of keyword inputs such as an encoder's token feeds). `example_input` (a tensor, or a tuple/dict of
    inputs) is only needed by the channel pattern, to trace the model. `left`, if given, receives the selected
    layers the channel pattern left whole, and why (the model's output layers, for one).

    >>> prune_model(model, Prune(pattern=Unstructured(), criterion=Magnitude(norm=1), amount=0.5), None, train)  # doctest: +SKIP
    """
    layers = check_prune(model, config, has_data=batches is not None)
    criterion = config.criterion
    if isinstance(criterion, OwnMasks):
        for name, mask in user_masks(layers, Path(criterion.file)).items():
            owner, param = weight_owner(layers[name])
            set_mask(owner, mask != 0, param)
        return model
    if isinstance(criterion, Custom) and score_fn is None:
        score_fn = criterion.fn if criterion.fn is not None else load_score_fn(criterion.score_fn)
    context = ScoreContext(model, batches, config.calibration_batches, loss_fn, seed, score_fn)
    job = PruneJob(model, layers, config, context, train, example_input, left if left is not None else {})
    remove = REMOVERS.get(type(config.pattern))
    if remove is not None:
        return remove(job)
    SCHEDULES[config.schedule](job, lambda fraction: apply_pruning_step(job, config.pattern, fraction))
    return model


def apply_pruning_step(job: PruneJob, pattern: PatternConfig, fraction: float) -> None:
    """Score the selected layers and mask them to `fraction` of their target sparsity."""
    scores = job.config.criterion.scores(job.layers, job.scores)
    for name, module in job.layers.items():
        mask = get_mask(*weight_owner(module))
        if mask is not None:  # already pruned weights go first, so sparsity only grows
            scores[name] = scores[name].masked_fill(mask == 0, float("-inf"))
    keep = pattern.keep(scores, job.amounts(fraction), job.config.scope, fraction)
    for name, module in job.layers.items():
        if keep is not None:
            owner, param = weight_owner(module)
            set_mask(owner, keep[name], param)


def _prune_channels(job: PruneJob) -> nn.Module:
    """Torch-Pruning for Linear/conv output channels, `recurrent.py` for recurrent hidden units (by hand: why there)."""
    config = job.config
    rounds = config.steps if config.schedule == "iterative" else 1
    targets = job.target_amounts()
    dense = {name: layer for name, layer in job.layers.items() if not isinstance(layer, RecurrentWeight)}
    recurrent = _recurrent_amounts(job.model, job.layers, targets)
    pruner = None
    if dense:
        per_layer = {name: targets[name] for name in dense} if config.per_layer else None
        pruner = channel_pruner(
            job.model, job.example_input, dense, config.amount, config.criterion, config.scope == "global", rounds, per_layer,
            config.pattern.round_to, job.left, has_other_work=bool(recurrent),
        )
    original = {name: job.model.get_submodule(name).hidden_size for name in recurrent}
    batches = list(take_batches(job.scores.batches, config.calibration_batches)) if config.criterion.needs_data else None
    norm = getattr(config.criterion, "norm", 2)
    seed = job.scores.seed if config.criterion.kind == "random" else None
    for step in range(1, rounds + 1):
        if pruner is not None:
            step_pruner(pruner, job.model, config.criterion, batches, job.scores.loss_fn)
        if recurrent:
            amounts = {name: amount * step / rounds for name, amount in recurrent.items()}
            left = remove_hidden_units(job.model, amounts, job.example_input, original, norm, seed, config.pattern.round_to)
            job.left.update(left)
        if config.schedule == "iterative":
            job.train(config.epochs)
    return job.model


def _recurrent_amounts(model: nn.Module, layers: dict, targets: dict[str, float]) -> dict[str, float]:
    """Recurrent module name -> the amount of hidden units it loses: the largest amount among its selected
    weight matrices (every layer of the module keeps one hidden_size)."""
    modules = {id(m): n for n, m in model.named_modules()}
    out: dict[str, float] = {}
    for name, layer in layers.items():
        if isinstance(layer, RecurrentWeight):
            owner = modules[id(layer.owner)]
            out[owner] = max(out.get(owner, 0.0), targets[name])
    return out


# Patterns that remove weights physically rather than masking them: pattern type -> how.
REMOVERS: dict[type[PatternConfig], Callable[[PruneJob], nn.Module]] = {Channels: _prune_channels}
