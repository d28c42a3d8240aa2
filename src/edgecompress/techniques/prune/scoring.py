"""What the criteria compute: every selected weight's score (higher = keep), with torch.

`criteria.py` holds the criteria as configs (no torch, so recipes load without it); `SCORERS` maps each
criterion's `kind` to its function here, and `CriterionConfig.scores` calls it. Scores of weights that are
already masked are irrelevant: the engine forces them to be removed first.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.techniques.prune.calibration import batch_loss, run_calibration, take_batches

Scores = dict[str, torch.Tensor]


@dataclass
class ScoreContext:
    """What a criterion may use besides the weights."""

    model: nn.Module
    batches: Iterable | Callable | None = None  # calibration data in a form of `prune/calibration.py`
    max_batches: int = 8
    loss_fn: Callable | None = None
    seed: int = 0
    score_fn: Callable[[str, nn.Module], torch.Tensor] | None = None
    movement: Scores = field(default_factory=dict)  # accumulated during training (MovementTracker)


def _magnitude(criterion, layers, ctx):
    return {n: m.weight.detach().abs() ** criterion.norm for n, m in layers.items()}


def _random(criterion, layers, ctx):
    generator = torch.Generator().manual_seed(ctx.seed)
    return {n: torch.rand(m.weight.shape, generator=generator) for n, m in layers.items()}


def _taylor(criterion, layers, ctx):
    """First-order Taylor (Molchanov et al. 2019): (w * dL/dw)^2, summed over a few batches.

    Squaring per batch before summing matters: a trained model's mean gradient is near zero and noisy,
    so |w * mean gradient| ranks weights almost at random.
    """
    grads = {n: torch.zeros_like(m.weight) for n, m in layers.items()}
    was_training = ctx.model.training
    ctx.model.eval()
    for batch in take_batches(ctx.batches, ctx.max_batches):
        ctx.model.zero_grad(set_to_none=True)
        batch_loss(ctx.model, batch, ctx.loss_fn).backward()
        for n, m in layers.items():
            grad = _weight_grad(m)
            if grad is not None:
                grads[n] += (layers[n].weight.detach() * grad.detach()) ** 2
    ctx.model.zero_grad(set_to_none=True)
    ctx.model.train(was_training)
    return grads


def _wanda(criterion, layers, ctx):
    """Wanda (Sun et al. 2023): |W_ij| x ||X_j||_2, the input feature's norm over calibration data."""
    sq_norms: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, args):
            x = args[0].detach()
            if isinstance(module, nn.Linear):
                per_feature = x.reshape(-1, x.shape[-1]).pow(2).sum(0)
            else:  # conv: (N, C, *spatial) -> per input channel
                per_feature = x.transpose(0, 1).reshape(x.shape[1], -1).pow(2).sum(1)
            sq_norms[name] = sq_norms.get(name, 0) + per_feature

        return record

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in layers.items()]
    try:
        run_calibration(ctx.model, ctx.batches, ctx.max_batches)
    finally:
        for handle in handles:
            handle.remove()
    scores = {}
    for name, module in layers.items():
        weight = module.weight.detach().abs()
        if name not in sq_norms:
            raise UserError(f"prune.calibration: layer {name} never ran on the calibration data; check the batches reach it")
        norm = sq_norms[name].sqrt()
        if isinstance(module, nn.Linear):
            scores[name] = weight * norm.reshape(1, -1)
        else:
            groups = getattr(module, "groups", 1)
            per_in = norm.reshape(groups, -1)  # the input channels each group's filters see
            per_in = per_in.repeat_interleave(weight.shape[0] // groups, dim=0)
            scores[name] = weight * per_in.reshape(weight.shape[0], weight.shape[1], *([1] * (weight.dim() - 2)))
    return scores


def _movement(criterion, layers, ctx):
    """Movement (Sanh et al. 2020): -sum over training steps of dL/dw * w; weights moving away from 0 score high."""
    missing = [n for n in layers if n not in ctx.movement]
    if missing:
        raise UserError("prune.criterion: movement scores need training first; use schedule gradual or iterative")
    return {n: ctx.movement[n].clone() for n in layers}


def _custom(criterion, layers, ctx):
    scores = {}
    for name, module in layers.items():
        score = ctx.score_fn(name, module)
        if not isinstance(score, torch.Tensor) or score.shape != module.weight.shape:
            got = tuple(score.shape) if isinstance(score, torch.Tensor) else type(score).__name__
            raise UserError(
                f"prune.score_fn: returned {got} for layer {name}; it must return a tensor of the weight's shape "
                f"{tuple(module.weight.shape)}"
            )
        scores[name] = score.detach().float()
    return scores


# criterion kind -> fn(criterion, layers, ctx) -> Scores; `masks` (OwnMasks) has none: its masks are applied as given
SCORERS: dict[str, Callable[..., Scores]] = {
    "magnitude": _magnitude, "random": _random, "taylor": _taylor, "wanda": _wanda, "movement": _movement, "custom": _custom,
}


class MovementTracker:
    """Training callback accumulating movement scores -dL/dw * w after every backward pass."""

    def __init__(self, layers: dict[str, nn.Module], scores: Scores):
        self.layers = layers
        self.scores = scores
        for name, module in layers.items():
            scores.setdefault(name, torch.zeros_like(module.weight.detach()))

    def after_backward(self, step: int) -> None:
        for name, module in self.layers.items():
            grad = _weight_grad(module)
            if grad is not None:
                self.scores[name] -= grad * module.weight.detach()


def _weight_grad(layer) -> torch.Tensor | None:
    """The gradient of a selected layer's weight (a module's, or a recurrent weight matrix's: `recurrent.py`)."""
    from torch.nn.utils import parametrize

    module, name = getattr(layer, "owner", layer), getattr(layer, "param", "weight")
    if parametrize.is_parametrized(module, name):
        return getattr(module.parametrizations, name).original.grad
    return getattr(module, name).grad


def load_score_fn(spec: str) -> Callable:
    """Import `module:function` for the custom criterion."""
    module_name, _, func_name = spec.rpartition(":")
    try:
        fn = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError, ValueError):
        raise UserError(f"prune.score_fn: cannot import {spec!r}; write it as package.module:function") from None
    if not callable(fn):
        raise UserError(f"prune.score_fn: {spec!r} is not callable")
    return fn
