"""Quantization-aware training: weights trained through fake quantization with a straight-through estimator.

Each selected layer's weight is parametrized as w + (q(w) - w).detach(): the forward pass sees the weight on
its low-bit grid, the backward pass treats rounding as identity (Bengio et al. 2013). The grid is symmetric
per output channel, scale = max|w| / (2^(bits-1) - 1); "ternary" is BitNet b1.58's absmean grid
{-1, 0, +1} x mean|w|. Rounding keeps a zero at zero, so masks from pruning stay exact (the mask
parametrization runs first). After training, export bakes the grid values into the weights; a following
static int8 quantization represents them (nearly) exactly, and the packed .ecz file stores them at about
their entropy, so the storage reflects the bit width.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgecompress.errors import UserError

TERNARY = "ternary"


class FakeQuantize(nn.Module):
    """Parametrization putting a weight on a symmetric per-output-channel grid (straight-through gradient)."""

    def __init__(self, bits: int | str):
        super().__init__()
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (quantize_to_grid(weight.detach(), self.bits) - weight).detach()


def quantize_to_grid(weight: torch.Tensor, bits: int | str) -> torch.Tensor:
    """The grid values of `weight` (not integers): per output channel, symmetric; zero stays zero.

    >>> quantize_to_grid(torch.tensor([[0.9, -0.2, 0.0]]), 2).tolist()
    [[0.8999999761581543, -0.0, 0.0]]
    """
    dims = tuple(range(1, weight.dim()))
    if bits == TERNARY:
        scale = weight.abs().mean(dim=dims, keepdim=True)
        levels = 1
    else:
        levels = 2 ** (int(bits) - 1) - 1
        scale = weight.abs().amax(dim=dims, keepdim=True) / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero channel stays zero
    return torch.clamp(torch.round(weight / scale), -levels, levels) * scale


def prepare_qat(layers: dict[str, nn.Module], bits: int | str) -> None:
    """Add fake quantization to each layer's weight (after any pruning mask already on it)."""
    if bits != TERNARY and not (isinstance(bits, int) and 2 <= bits <= 8):
        raise UserError(f"qat.bits: must be an integer from 2 to 8 or 'ternary', got {bits!r}")
    for module in layers.values():
        parametrize.register_parametrization(module, "weight", FakeQuantize(bits))


def distinct_levels(weight: torch.Tensor) -> int:
    """Largest number of distinct values in one output channel: at most 2^bits - 1 after QAT (3 for ternary)."""
    return max(int(torch.unique(row).numel()) for row in weight.detach().reshape(weight.shape[0], -1))
