"""Masks on weights through torch.nn.utils.parametrize: the forward pass sees weight * mask.

Because the mask multiplies the weight inside the forward pass, any optimizer step leaves a pruned weight at
exactly zero (its gradient is zero too). `finalize` bakes the zeros into a plain weight for export.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize


class WeightMask(nn.Module):
    """Parametrization multiplying a weight by a fixed 0/1 mask (stored as a buffer in the weight's dtype)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def get_mask(module: nn.Module, name: str = "weight") -> torch.Tensor | None:
    """The mask currently applied to `module.<name>`, or None."""
    if not parametrize.is_parametrized(module, name):
        return None
    for param in module.parametrizations[name]:
        if isinstance(param, WeightMask):
            return param.mask
    return None


def set_mask(module: nn.Module, keep: torch.Tensor, name: str = "weight") -> None:
    """Apply `keep` (bool, weight-shaped) to `module.<name>`; a weight already masked keeps its zeros."""
    weight = getattr(module, name)
    mask = keep.to(dtype=weight.dtype, device=weight.device)
    existing = get_mask(module, name)
    if existing is not None:
        existing.copy_(existing * mask)
        return
    parametrize.register_parametrization(module, name, WeightMask(mask))
    if isinstance(module, nn.RNNBase) and _release_flat_weights not in module._forward_hooks.values():
        module.register_forward_hook(_release_flat_weights)


def _release_flat_weights(module: nn.RNNBase, args, output) -> None:
    """A masked GRU/LSTM/RNN keeps its last forward's weight * mask products in `_flat_weights`; a deep copy
    (every stage copies its model) refuses such non-leaf tensors, so they are detached after each call.
    The next forward rebuilds the list anyway: the parametrized weight is a new tensor each time."""
    module._flat_weights = [w.detach() if isinstance(w, torch.Tensor) and w.grad_fn is not None else w for w in module._flat_weights]


def masked_weights(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """Every masked weight: `<module>` for a module's `weight`, `<module>.<param>` for another (a recurrent
    layer's `weight_hh_l0`, ...) -> (module, parameter name)."""
    out = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for param in module.parametrizations:
                if get_mask(module, param) is not None:
                    out[name if param == "weight" else f"{name}.{param}"] = (module, param)
    return out


def finalize(model: nn.Module) -> nn.Module:
    """Remove every parametrization in place, leaving plain weights with the pruned entries at zero.

    Not `parametrize.remove_parametrizations`: it deletes the weight property from the parametrized class,
    which a deep copy shares with the original, so finalizing a copy would break the original model.
    """
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            values = {name: getattr(module, name).detach().clone() for name in module.parametrizations}
            module.__class__ = module.__class__.__bases__[0]  # the class before parametrize injected its own
            del module._modules["parametrizations"]
            for name, value in values.items():
                module.register_parameter(name, nn.Parameter(value))
            for key in [k for k, hook in module._forward_hooks.items() if hook is _release_flat_weights]:
                del module._forward_hooks[key]
    return model


def finalized_copy(model: nn.Module) -> nn.Module:
    """A plain copy for export; the original keeps its masks (so fine-tuning can continue)."""
    if not any(parametrize.is_parametrized(m) for m in model.modules()):
        return model
    return finalize(copy.deepcopy(model))
