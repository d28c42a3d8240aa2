"""Criteria: what a weight's importance is, as typed configs. `Prune(criterion=...)` takes one of them, or a
Python callable `fn(name, module) -> scores`. Each scores every weight (higher = keep).

- `Magnitude(norm=1|2)`, `Random()` (the control): no data;
- `Taylor()` (|w x grad|), `Wanda()` (|w| x input norm): calibration data;
- `Movement()`: needs training (schedule iterative or gradual);
- `Custom(score_fn="module:function")` or a callable; `OwnMasks(file="masks.safetensors")`: masks as given.

Scores of weights that are already masked are irrelevant: the engine forces them to be removed first.

>>> Magnitude(norm=1), Wanda().needs_data
(Magnitude(kind='magnitude', norm=1), True)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Literal, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
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


class CriterionConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    needs_data: ClassVar[bool] = False
    needs_training: ClassVar[bool] = False
    scores_channels: ClassVar[bool] = False  # Torch-Pruning has an importance for it (pattern Channels)

    def scores(self, layers: dict[str, nn.Module], ctx: ScoreContext) -> Scores:
        raise NotImplementedError


class Magnitude(CriterionConfig):
    """|w| (norm 1) or w^2 (norm 2); the same ranking per weight, different sums over groups."""

    kind: Literal["magnitude"] = "magnitude"
    norm: Literal[1, 2] = 2
    scores_channels: ClassVar[bool] = True

    def scores(self, layers, ctx):
        return {n: m.weight.detach().abs() ** self.norm for n, m in layers.items()}


class Random(CriterionConfig):
    """Random scores from the run's seed: the control every other criterion must beat."""

    kind: Literal["random"] = "random"
    scores_channels: ClassVar[bool] = True

    def scores(self, layers, ctx):
        return _random(layers, ctx)


class Taylor(CriterionConfig):
    """First-order Taylor (Molchanov et al. 2019) on calibration batches."""

    kind: Literal["taylor"] = "taylor"
    needs_data: ClassVar[bool] = True
    scores_channels: ClassVar[bool] = True

    def scores(self, layers, ctx):
        return _taylor(layers, ctx)


class Wanda(CriterionConfig):
    """Wanda (Sun et al. 2023): |W_ij| x ||X_j||_2 over calibration batches."""

    kind: Literal["wanda"] = "wanda"
    needs_data: ClassVar[bool] = True

    def scores(self, layers, ctx):
        return _wanda(layers, ctx)


class Movement(CriterionConfig):
    """Movement (Sanh et al. 2020), accumulated during training."""

    kind: Literal["movement"] = "movement"
    needs_training: ClassVar[bool] = True

    def scores(self, layers, ctx):
        return _movement(layers, ctx)


class Custom(CriterionConfig):
    """Your own scores: `score_fn` = "module:function", or `fn`, a Python callable (name, module) -> scores of
    the weight's shape (`Prune(criterion=fn)` builds this; `fn` is not serialized)."""

    kind: Literal["custom"] = "custom"
    score_fn: Optional[str] = Field(None, description="module:function(name, module) -> scores")
    fn: Optional[Any] = Field(None, exclude=True, description="a Python callable (name, module) -> scores")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.score_fn is None) == (self.fn is None):
            raise ValueError("criterion custom needs exactly one of score_fn (module:function) or a Python callable")
        if self.fn is not None and not callable(self.fn):
            raise ValueError(f"criterion custom: fn must be callable, got {type(self.fn).__name__}")
        return self

    def scores(self, layers, ctx):
        return _custom(layers, ctx)


class OwnMasks(CriterionConfig):
    """0/1 masks by layer name from a .safetensors `file`, applied as given (pattern unstructured, schedule oneshot)."""

    kind: Literal["masks"] = "masks"
    file: str = Field(description="a .safetensors file of 0/1 masks by layer name")


def _random(layers, ctx):
    generator = torch.Generator().manual_seed(ctx.seed)
    return {n: torch.rand(m.weight.shape, generator=generator) for n, m in layers.items()}


def _taylor(layers, ctx):
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


def _wanda(layers, ctx):
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


def _movement(layers, ctx):
    """Movement (Sanh et al. 2020): -sum over training steps of dL/dw * w; weights moving away from 0 score high."""
    missing = [n for n in layers if n not in ctx.movement]
    if missing:
        raise UserError("prune.criterion: movement scores need training first; use schedule gradual or iterative")
    return {n: ctx.movement[n].clone() for n in layers}


def _custom(layers, ctx):
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
