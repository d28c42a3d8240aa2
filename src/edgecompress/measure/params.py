"""Parameter counts and tensor bytes of a torch model."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in _unique(model.parameters()))


def count_nonzero_params(model: nn.Module) -> int:
    """Number of parameter elements that are not exactly zero (masks applied, if any)."""
    return sum(int(torch.count_nonzero(p.detach())) for p in _effective_weights(model))


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of every tensor in the state_dict (parameters and buffers): the floor of any dense file."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _unique(tensors):
    seen: set[int] = set()
    for tensor in tensors:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            yield tensor


def _effective_weights(model: nn.Module):
    """Parameters as the forward pass sees them: for torch.nn.utils.prune, `weight` (= orig * mask), not weight_orig."""
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if name.endswith("_orig") and hasattr(module, name[: -len("_orig")]):
                yield getattr(module, name[: -len("_orig")])
            else:
                yield param
