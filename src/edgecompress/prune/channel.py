"""Structured pruning: physically remove output channels / neurons, with Torch-Pruning.

Torch-Pruning traces the model's dependency graph, so removing conv2's filters also removes the matching
input columns of fc1; masks alone would make nothing smaller or faster (FINDINGS sec. 1).
"""

from __future__ import annotations

import fnmatch

import torch
import torch_pruning as tp
from torch import nn

from edgecompress.errors import RunFailure, UserError

PRUNABLE_TYPES = (nn.Conv2d, nn.Conv1d, nn.Linear)


def classifier_layer(model: nn.Module) -> nn.Module | None:
    """The last Linear/conv in registration order: its outputs are the model's outputs, so it is kept."""
    layers = [m for m in model.modules() if isinstance(m, PRUNABLE_TYPES)]
    return layers[-1] if layers else None


def prune_channels(
    model: nn.Module,
    example_input: torch.Tensor,
    amount: float,
    norm: int = 2,
    global_scope: bool = False,
    keep: tuple[str, ...] = (),
) -> nn.Module:
    """Remove `amount` of the output channels of every prunable layer except the classifier, in place.

    Channels are scored by the L`norm` norm of their weights, summed over the coupled layers Torch-Pruning
    groups together. `keep` lists fnmatch patterns of layer names to leave untouched.
    """
    if not 0.0 < amount < 1.0:
        raise UserError(f"prune.amount: must be between 0 and 1 (exclusive), got {amount}")
    ignored = [m for name, m in model.named_modules() if any(fnmatch.fnmatch(name, pat) for pat in keep)]
    classifier = classifier_layer(model)
    if classifier is None:
        raise UserError(f"prune: {type(model).__name__} has no Conv or Linear layer to prune")
    ignored.append(classifier)
    prunable = [m for m in model.modules() if isinstance(m, PRUNABLE_TYPES) and m not in ignored]
    if not prunable:
        raise UserError("prune: every prunable layer is kept (classifier and prune.keep); nothing to prune")
    was_training = model.training
    model.eval()
    try:
        pruner = tp.pruner.BasePruner(
            model,
            example_input,
            importance=tp.importance.GroupMagnitudeImportance(p=norm),
            pruning_ratio=amount,
            global_pruning=global_scope,
            ignored_layers=ignored,
        )
        pruner.step()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunFailure(f"prune: Torch-Pruning could not prune {type(model).__name__}: {first}") from exc
    finally:
        model.train(was_training)
    return model
