"""Quantization-aware training: weights trained through fake quantization with a straight-through estimator.

Each selected layer's weight is parametrized as w + (q(w) - w).detach(): the forward pass sees the weight on
its low-bit grid, the backward pass treats rounding as identity (Bengio et al. 2013). The grid is symmetric
per output channel, scale = max|w| / (2^(bits-1) - 1); "ternary" is {-a, 0, +a} per output channel, by
Ternary Weight Networks' rule (default) or BitNet b1.58's absmean rule (`ternary_grid`). Rounding keeps a zero at zero, so masks from pruning stay exact (the mask
parametrization runs first). After training, export bakes the grid values into the weights; a following
static int8 quantization represents them (nearly) exactly, and the packed .ecz file stores them at about
their entropy, so the storage reflects the bit width.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from edgecompress.core.errors import UserError

TERNARY = "ternary"


TERNARY_RULES = ("twn", "absmean")


class FakeQuantize(nn.Module):
    """Parametrization putting a weight on a symmetric per-output-channel grid (straight-through gradient)."""

    def __init__(self, bits: int | str, ternary_rule: str = "twn"):
        super().__init__()
        self.bits, self.ternary_rule = bits, ternary_rule

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (quantize_to_grid(weight.detach(), self.bits, self.ternary_rule) - weight).detach()


def ternary_grid(weight: torch.Tensor, rule: str = "twn") -> torch.Tensor:
    """{-a, 0, +a} per output channel; zero stays zero.

    - "twn" (Li & Liu 2016, Ternary Weight Networks): weights below 0.7 x mean|w| become 0, `a` is the mean
      |w| of the others: close to the least-squares ternary approximation of the channel.
    - "absmean" (BitNet b1.58): round(w / mean|w|) clipped to +-1, `a` = mean|w| (zero below 0.5 x mean|w|).
    Measured on the demo (digits CNN, channels -50%, 16 epochs of QAT from the same fine-tuned model, one
    thread), seeds 0/1/2: twn 98.33/98.06/98.61%, absmean 98.33/97.50/97.50%.

    >>> ternary_grid(torch.tensor([[0.9, -0.5, 0.1, 0.0]])).tolist()
    [[0.699999988079071, -0.699999988079071, 0.0, 0.0]]
    """
    dims = tuple(range(1, weight.dim()))
    mean = weight.abs().mean(dim=dims, keepdim=True)
    if rule == "absmean":
        scale = torch.where(mean > 0, mean, torch.ones_like(mean))  # an all-zero channel stays zero
        return torch.clamp(torch.round(weight / scale), -1, 1) * scale
    kept = weight.abs() > 0.7 * mean
    if not kept.any():
        return torch.zeros_like(weight)
    scale = (weight.abs() * kept).sum(dim=dims, keepdim=True) / kept.sum(dim=dims, keepdim=True).clamp(min=1)
    return torch.sign(weight) * kept * scale


def quantize_to_grid(weight: torch.Tensor, bits: int | str, ternary_rule: str = "twn") -> torch.Tensor:
    """The grid values of `weight` (not integers): per output channel, symmetric; zero stays zero.

    >>> quantize_to_grid(torch.tensor([[0.9, -0.2, 0.0]]), 2).tolist()
    [[0.8999999761581543, -0.0, 0.0]]
    """
    if bits == TERNARY:
        return ternary_grid(weight, ternary_rule)
    dims = tuple(range(1, weight.dim()))
    levels = 2 ** (int(bits) - 1) - 1
    scale = weight.abs().amax(dim=dims, keepdim=True) / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero channel stays zero
    return torch.clamp(torch.round(weight / scale), -levels, levels) * scale


def prepare_qat(layers: dict[str, nn.Module], bits: int | str, ternary_rule: str = "twn") -> None:
    """Add fake quantization to each layer's weight (after any pruning mask already on it)."""
    if bits != TERNARY and not (isinstance(bits, int) and 2 <= bits <= 8):
        raise UserError(f"qat.bits: must be an integer from 2 to 8 or 'ternary', got {bits!r}")
    if ternary_rule not in TERNARY_RULES:
        raise UserError(f"qat.ternary_rule: got {ternary_rule!r}; choose one of {', '.join(TERNARY_RULES)}")
    for module in layers.values():
        parametrize.register_parametrization(module, "weight", FakeQuantize(bits, ternary_rule))

