"""The primitives every structured removal shares: how many to remove, slicing a Linear, the calibration Gram
matrices and the least-squares refit of an output projection.

Kept apart from the removals themselves (`structured.py`: FFN neurons and encoder heads, `decoder_heads.py`,
`depth.py`) so that each of those reads as what it removes and why, not how a matrix is cut.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from edgecompress.core.errors import UserError

Feeds = Iterable[Mapping[str, np.ndarray]]
RIDGE = 1e-3  # relative to the mean input energy; 1e-4..1e-2 gave the same fidelity on MiniLM


def removed_count(fraction: float, n: int) -> int:
    """How many of `n` a `fraction` removes: rounded to the nearest whole one (halves up), at least one kept.

    >>> removed_count(0.25, 3), removed_count(0.5, 3), removed_count(0.9, 2), removed_count(0.1, 3)
    (1, 2, 1, 0)
    """
    return min(math.floor(fraction * n + 0.5), n - 1)


def keep_top(score: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the highest-scoring entries, in their original order; at least one is always kept."""
    n = score.numel()
    top = torch.topk(score, n - removed_count(fraction, n), sorted=False).indices
    return torch.sort(top).values


def check_fraction(fraction: float, field: str) -> None:
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 <= fraction < 1:
        raise UserError(f"{field}: must be a number in [0, 1) (the share removed from every layer), got {fraction!r}")


def check_plain(linears: list[nn.Module]) -> None:
    if any(parametrize.is_parametrized(m) for m in linears):
        raise UserError("prune: structured removal must run before masks or fake quantization are added; remove them first")


def has_path(module: nn.Module, path: str) -> bool:
    for name in path.split("."):
        module = getattr(module, name, None)
        if module is None:
            return False
    return True


def backbone(model: nn.Module) -> nn.Module:
    return getattr(model, "backbone", model)


def model_name(model: nn.Module) -> str:
    """The class name a user knows the model by: the transformers model inside a wrapper."""
    return type(getattr(model, "lm", None) or backbone(model)).__name__


def transformers_config(model: nn.Module):
    """The transformers config of `model` (its architecture as saved with the weights), or None."""
    return next((m.config for m in model.modules() if hasattr(getattr(m, "config", None), "to_dict")), None)


def slice_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> None:
    """Keep rows (dim 0: outputs, with their bias) or columns (dim 1: inputs) of a Linear, in place."""
    with torch.no_grad():
        linear.weight = nn.Parameter(linear.weight.index_select(dim, index).clone(), linear.weight.requires_grad)
        if dim == 0:
            if linear.bias is not None:
                linear.bias = nn.Parameter(linear.bias[index].clone(), linear.bias.requires_grad)
            linear.out_features = len(index)
        else:
            linear.in_features = len(index)


def head_channels(heads: torch.Tensor, size: int) -> torch.Tensor:
    """The channels (rows of a projection) of the given heads of `size` channels each, in order."""
    return (heads[:, None] * size + torch.arange(size)).reshape(-1)


def head_contributions(out_weight: torch.Tensor, gram: torch.Tensor, heads: int, size: int) -> torch.Tensor:
    """Each head's norm of its contribution through the output projection over the calibration tokens:
    sum over tokens of |W_h x_h|^2 = trace(W_h G_hh W_h^T), from the projection's input Gram matrix."""
    out = out_weight.detach().reshape(-1, heads, size)  # [hidden, head, channel]
    g = gram[:-1, :-1].float().reshape(heads, size, heads, size)
    score = torch.stack([torch.einsum("oc,cd,od->", out[:, h], g[h, :, h], out[:, h]) for h in range(heads)])
    return score.clamp(min=0).sqrt()


def refit_columns(linear: nn.Linear, keep: torch.Tensor, gram: torch.Tensor) -> None:
    """Re-solve `linear`'s weight and bias, on the kept inputs only, to reproduce its old output (least squares).

    The calibration Gram matrix G of [inputs, 1] holds everything needed: the old output is Y = [X, 1] W_aug^T,
    so the normal equations read (G_kk + ridge) W_new^T = G_k,: W_aug^T. Removed inputs that correlate with
    kept ones are folded into them; the rest becomes a bias. The ridge (1e-3 of the mean diagonal) keeps the
    solve stable for rarely active inputs.
    """
    with torch.no_grad():
        ones = gram.shape[0] - 1
        if linear.bias is None:  # no bias to absorb the mean: fit the kept inputs alone
            weight, rows, gram = linear.weight.double(), keep, gram[:ones, :ones]
        else:
            weight = torch.cat([linear.weight.double(), linear.bias.double()[:, None]], dim=1)
            rows = torch.cat([keep, torch.tensor([ones])])
        g_kk = gram[rows][:, rows]
        ridge = RIDGE * g_kk.diagonal().mean() * torch.eye(len(rows), dtype=gram.dtype)
        solution = torch.linalg.solve(g_kk + ridge, gram[rows] @ weight.T)  # [kept (+ 1), out]
        fitted = solution[: len(keep)].T.to(linear.weight.dtype)
        linear.weight.copy_(torch.zeros_like(linear.weight).index_copy(1, keep, fitted))
        if linear.bias is not None:
            linear.bias.copy_(solution[-1].to(linear.bias.dtype))


def calibration_pass(model: nn.Module, feeds: Feeds, batch: dict, field: str) -> None:
    """Run `model` (eval mode, no grad) on every feed, with `batch["real"]` set to the feed's real-token mask
    for the hooks that record what they need; padding positions are not calibration data."""
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with torch.no_grad():
            for feed in feeds:
                mask = torch.as_tensor(feed["attention_mask"])
                batch["real"] = mask.bool()
                model(torch.as_tensor(feed["input_ids"]), mask)
                seen += 1
    finally:
        model.train(was_training)
    if not seen:
        raise UserError(f"{field}: the calibration batches are empty; pass tokenized sentences or None for weight magnitude")


def input_grams(model: nn.Module, linears: list[nn.Linear], feeds: Feeds) -> list[torch.Tensor]:
    """For each Linear, the Gram matrix of its inputs with a ones column appended, over the real tokens.

    One calibration pass (eval mode, no grad) gives both importance (the diagonal: sum of squares) and what a
    least-squares refit needs. Float64 sums of float32 batch products: 10k tokens would round off in float32.
    """
    grams = [torch.zeros(m.in_features + 1, m.in_features + 1, dtype=torch.float64) for m in linears]
    batch: dict[str, torch.Tensor] = {}

    def record(i):
        def hook(module, inputs):
            x = inputs[0][batch["real"]].detach().float()
            x = torch.cat([x, torch.ones(len(x), 1)], dim=1)
            grams[i] += (x.T @ x).double()

        return hook

    handles = [m.register_forward_pre_hook(record(i)) for i, m in enumerate(linears)]
    try:
        calibration_pass(model, feeds, batch, "prune")
    finally:
        for handle in handles:
            handle.remove()
    return grams


def removal_report(what: str, fraction: float, feeds, refit: bool, kept: list[int], before: int, after: int) -> dict:
    """What a removal stage puts in metrics.json (`details`)."""
    return {
        "removed": what,
        "fraction": fraction,
        "criterion": "magnitude" if feeds is None else "activation (Wanda)",
        "refit": feeds is not None and refit,
        "kept_per_layer": kept,
        "params_before": before,
        "params_after": after,
    }
