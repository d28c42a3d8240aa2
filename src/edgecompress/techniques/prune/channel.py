"""Structured pruning: physically remove output channels / neurons, with Torch-Pruning.

Torch-Pruning traces the model's dependency graph, so removing conv2's filters also removes the matching
input columns of fc1 (and batch-norm entries, residual partners, concatenated slices); masks alone would make
nothing smaller or faster (FINDINGS sec. 1).
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch_pruning as tp
from torch import nn

from edgecompress.core.errors import RunFailure, UserError, first_line
from edgecompress.techniques.prune.calibration import batch_loss
from edgecompress.techniques.prune.criteria import CriterionConfig, Magnitude, Random, Taylor

# criterion type -> Torch-Pruning's importance for it
IMPORTANCE = {
    Magnitude: lambda criterion: tp.importance.GroupMagnitudeImportance(p=criterion.norm),
    Taylor: lambda criterion: tp.importance.GroupTaylorImportance(),
    Random: lambda criterion: tp.importance.RandomImportance(),
}


def channel_pruner(
    model: nn.Module,
    example_input: torch.Tensor,
    layers: dict[str, nn.Module],
    amount: float,
    criterion: CriterionConfig = Magnitude(),
    global_scope: bool = False,
    steps: int = 1,
    per_layer: dict[str, float] | None = None,
    round_to: int | None = None,
) -> tp.pruner.BasePruner:
    """A Torch-Pruning pruner that removes `amount` of the output channels of `layers` over `steps` calls.

    With `round_to` (layer scope), every pruned layer keeps a multiple of that many channels, at least one
    multiple: on this machine a CNN with 22/44 channels ran 1.4x slower than with 32/64 (BENCHMARKS.md, "sparsity sweep").
    """
    if type(criterion) not in IMPORTANCE:
        raise UserError(f"prune.criterion: {criterion.kind} does not apply to pattern channel; use magnitude, taylor or random")
    selected = set(map(id, layers.values()))
    ignored = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and id(m) not in selected]
    importance = IMPORTANCE[type(criterion)](criterion)
    if round_to is not None:
        per_layer = {name: _rounded_ratio(module, (per_layer or {}).get(name, amount), round_to) for name, module in layers.items()}
    ratio_dict = {layers[name]: ratio for name, ratio in (per_layer or {}).items()} or None
    try:
        return tp.pruner.BasePruner(
            model,
            example_input,
            importance=importance,
            pruning_ratio=amount,
            pruning_ratio_dict=ratio_dict,
            global_pruning=global_scope,
            ignored_layers=ignored,
            iterative_steps=steps,
            round_to=round_to,
        )
    except Exception as exc:
        raise RunFailure(f"prune: Torch-Pruning cannot trace {type(model).__name__}: {first_line(exc)}") from exc


def _rounded_ratio(module: nn.Module, amount: float, round_to: int) -> float:
    """The ratio that makes Torch-Pruning keep the largest multiple of `round_to` channels within `amount`.

    Written here because Torch-Pruning's own `round_to` rounds the kept count down to zero at high amounts
    (and then prunes nothing); here a layer keeps at least `round_to` channels, or all if it has fewer.
    """
    channels = module.weight.shape[0]
    kept = max(round_to, int(channels * (1.0 - amount)) // round_to * round_to)
    if kept >= channels:
        return 0.0
    return 1.0 - (kept + 0.5) / channels  # Torch-Pruning keeps int(channels * (1 - ratio)) = kept


def step_pruner(pruner, model: nn.Module, criterion: CriterionConfig, batches: Iterable | None = None, loss_fn=None) -> None:
    """One pruning step; Taylor importance first needs gradients from a few batches."""
    was_training = model.training
    model.eval()
    try:
        if criterion.needs_data:  # Taylor: gradients first
            model.zero_grad(set_to_none=True)
            for batch in batches:
                batch_loss(model, batch, loss_fn).backward()
        pruner.step()
    except UserError:
        raise
    except Exception as exc:
        raise RunFailure(f"prune: Torch-Pruning could not prune {type(model).__name__}: {first_line(exc)}") from exc
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)

