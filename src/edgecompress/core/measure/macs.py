"""Multiply-accumulates per layer, counted by torch's own FLOP counter.

torch.utils.flop_counter counts the matmul-like ops (conv, linear, bmm, attention) wherever they are called
from, functional code included; a MAC is half of its FLOPs. Elementwise work (bias, activations, pooling) is
not counted, as is the convention for MACs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgecompress.core.tasks.inputs import Inputs, call_model


def count_macs(model: nn.Module, example_input: Inputs) -> tuple[int, dict[str, int]]:
    """Return total MACs of one forward pass and each module's own MACs, by qualified name ("" is the root).

    A module's own MACs are those its children do not account for: all of a leaf layer's work, and the
    functional matmuls a container does itself (e.g. attention scores), so the per-module numbers sum to the total.
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            call_model(model, example_input)
    finally:
        model.train(was_training)
    root = type(model).__name__
    inclusive: dict[str, int] = {}
    for key, ops in counter.get_flop_counts().items():
        if key == root:
            inclusive[""] = int(sum(ops.values()))
        elif key.startswith(root + "."):
            inclusive[key[len(root) + 1 :]] = int(sum(ops.values()))
    own: dict[str, int] = {}
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        children = sum(inclusive.get(prefix + child, 0) for child, _ in module.named_children())
        flops = inclusive.get(name, 0) - children
        if flops > 0:
            own[name] = flops // 2
    return int(counter.get_total_flops()) // 2, own
