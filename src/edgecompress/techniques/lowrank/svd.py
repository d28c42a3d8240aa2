"""Truncated SVD of Linear layers: W (out x in) ~ U_r S_r V_r^T becomes Linear(in, r) then Linear(r, out).

The pair holds r (in + out) weights instead of in x out, and runs as two dense matmuls, so it is smaller and
faster in any runtime when r < in out / (in + out). The rank comes from a parameter budget (`keep`, met over
all factorized layers together: budget.py) or is the smallest rank keeping a fraction of the spectral energy
(`energy`, the sum of squared singular values). Written by hand because torch gives the SVD but no layer surgery around it.
"""

from __future__ import annotations

import torch
from torch import nn


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
