"""GPT-2's projections as `nn.Linear`: transformers' `Conv1D` is a Linear whose weight is stored transposed.

Every technique recognises `nn.Linear` (masks, SparseGPT, ternary QAT, int4's MatMulNBits, the int8 formats).
Rather than teach each one a second weight layout, a GPT-2-style decoder's Conv1D layers are swapped at load
time for the Linear computing the same function; the exported graph holds the same MatMul either way.
"""

from __future__ import annotations

import torch
from torch import nn


def conv1d_as_linear(model: nn.Module) -> int:
    """Replace every transformers `Conv1D` in `model` by the equivalent `nn.Linear`, in place; returns how many.

    >>> conv1d_as_linear(gpt2_lm)  # doctest: +SKIP
    48
    """
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ != "Conv1D" or not type(child).__module__.startswith("transformers"):
                continue
            inputs, outputs = child.weight.shape  # Conv1D computes x @ weight + bias, weight (in, out)
            linear = nn.Linear(inputs, outputs, bias=child.bias is not None, dtype=child.weight.dtype)
            with torch.no_grad():
                linear.weight.copy_(child.weight.T)
                if child.bias is not None:
                    linear.bias.copy_(child.bias)
            linear.train(child.training)
            setattr(parent, name, linear)
            replaced += 1
    return replaced
