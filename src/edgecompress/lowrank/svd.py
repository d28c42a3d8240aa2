"""Truncated SVD of Linear layers: W (out x in) ~ U_r S_r V_r^T becomes Linear(in, r) then Linear(r, out).

The pair holds r (in + out) weights instead of in x out, and runs as two dense matmuls, so it is smaller and
faster in any runtime when r < in out / (in + out). The rank is chosen per layer, either to keep a fraction of
the parameters (`keep`) or the smallest rank keeping a fraction of the spectral energy (`energy`, the sum of
squared singular values). Written by hand because torch gives the SVD but no layer surgery around it.
"""

from __future__ import annotations

import fnmatch

import torch
from torch import nn

from edgecompress.errors import UserError


def choose_rank(weight: torch.Tensor, keep: float | None = None, energy: float | None = None) -> int:
    """Rank for a parameter budget (`keep` of in x out) or a kept energy fraction; at least 1."""
    out_features, in_features = weight.shape
    if keep is not None:
        return max(1, int(keep * out_features * in_features / (out_features + in_features)))
    singular = torch.linalg.svdvals(weight.detach().double())
    cumulative = torch.cumsum(singular**2, 0) / torch.sum(singular**2).clamp_min(1e-30)
    return int(torch.searchsorted(cumulative, torch.tensor(energy, dtype=cumulative.dtype)).item()) + 1


def factorize_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """Two Linear layers whose product is the best rank-`rank` approximation of `layer` (bias on the second)."""
    u, s, vh = torch.linalg.svd(layer.weight.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    first = nn.Linear(layer.in_features, rank, bias=False)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        first.weight.copy_((root[:, None] * vh[:rank]).to(layer.weight.dtype))
        second.weight.copy_((u[:, :rank] * root[None, :]).to(layer.weight.dtype))
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def factorize_linears(
    model: nn.Module,
    layers: tuple[str, ...] = ("*",),
    keep: float | None = 0.5,
    energy: float | None = None,
    keep_classifier: bool = True,
) -> dict[str, tuple[int, int]]:
    """Factorize the matching Linear layers in place when it saves parameters; return {name: (rank, full rank)}.

    >>> from edgecompress.models import DigitsCNN
    >>> factorize_linears(DigitsCNN(), keep=0.5)
    {'fc1': (42, 128)}
    """
    if (keep is None) == (energy is None):
        raise UserError("factorize: give exactly one of keep (a parameter fraction) or energy (a spectral fraction)")
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    if keep_classifier and linears:
        linears.pop(list(linears)[-1])
    chosen = {n: m for n, m in linears.items() if any(fnmatch.fnmatch(n, p) for p in layers)}
    if not chosen:
        raise UserError(f"factorize.layers: {list(layers)} matches no Linear layer; Linear layers are: {', '.join(linears) or 'none'}")
    report = {}
    for name, layer in chosen.items():
        rank = choose_rank(layer.weight, keep, energy)
        full = min(layer.weight.shape)
        if rank * (layer.in_features + layer.out_features) >= layer.in_features * layer.out_features:
            continue  # this rank would not save anything: leave the layer dense
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, factorize_linear(layer, rank))
        report[name] = (rank, full)
    return report
