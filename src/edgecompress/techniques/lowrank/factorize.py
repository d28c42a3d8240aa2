"""Factorize a model's Linear layers (truncated SVD) and convolutions (two thinner convolutions) in place.

The rank comes from a parameter budget (`keep`: the factorized layers together keep that fraction of their
parameters, met to within one small rank step, see budget.py) or from kept spectral energy (`energy`: per
layer, the smallest rank holding that fraction of the squared singular values). A layer is only replaced when
its factorized form holds fewer parameters.
"""

from __future__ import annotations

import fnmatch

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.techniques.lowrank.budget import LayerShape, allocate_ranks
from edgecompress.techniques.lowrank.conv import conv_matrix, factorize_conv
from edgecompress.techniques.lowrank.svd import choose_rank, factorize_linear


def factorize(
    model: nn.Module,
    layers: tuple[str, ...] = ("*",),
    keep: float | None = 0.5,
    energy: float | None = None,
    keep_classifier: bool = True,
    convs: bool = True,
) -> dict[str, tuple[int, int]]:
    """Factorize matching Linear (and, with `convs`, ungrouped Conv2d) layers; return {name: (rank, full rank)}.

    >>> from edgecompress.core.models import DigitsCNN
    >>> factorize(DigitsCNN(), keep=0.5)
    {'conv1': (2, 9), 'conv2': (27, 64), 'fc1': (42, 128)}
    """
    if (keep is None) == (energy is None):
        raise UserError("factorize: give exactly one of keep (a parameter fraction) or energy (a spectral fraction)")
    candidates = _candidates(model, convs, keep_classifier)
    chosen = {n: m for n, m in candidates.items() if any(fnmatch.fnmatch(n, p) for p in layers)}
    if not chosen:
        kinds = "Linear or Conv2d" if convs else "Linear"
        raise UserError(f"factorize.layers: {list(layers)} matches no {kinds} layer; they are: {', '.join(candidates) or 'none'}")
    shapes = {n: _shape(m) for n, m in chosen.items()}
    if keep is not None:
        ranks = allocate_ranks(shapes, keep)
    else:
        ranks = {n: choose_rank(_matrix(m), energy=energy) for n, m in chosen.items()}
        ranks = {n: (r if r <= shapes[n].max_rank else None) for n, r in ranks.items()}
    report = {}
    for name, rank in ranks.items():
        if rank is None:
            continue  # this layer stays dense: no rank it may have would save anything
        layer = chosen[name]
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, factorize_conv(layer, rank) if isinstance(layer, nn.Conv2d) else factorize_linear(layer, rank))
        report[name] = (rank, min(shapes[name].rows, shapes[name].cols))
    return report


def _candidates(model: nn.Module, convs: bool, keep_classifier: bool) -> dict[str, nn.Module]:
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    classifier = linears[-1] if keep_classifier and linears else None
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name != classifier:
            found[name] = module
        elif convs and isinstance(module, nn.Conv2d) and module.groups == 1 and module.padding_mode == "zeros":
            found[name] = module
    return found


def _matrix(layer: nn.Module) -> torch.Tensor:
    return conv_matrix(layer) if isinstance(layer, nn.Conv2d) else layer.weight.detach()


def _shape(layer: nn.Module) -> LayerShape:
    rows, cols = _matrix(layer).shape
    return LayerShape(rows, cols, 0 if layer.bias is None else layer.bias.numel())


def factorize_linears(
    model: nn.Module,
    layers: tuple[str, ...] = ("*",),
    keep: float | None = 0.5,
    energy: float | None = None,
    keep_classifier: bool = True,
) -> dict[str, tuple[int, int]]:
    """Factorize the matching Linear layers in place when it saves parameters; return {name: (rank, full rank)}.

    With `keep`, the factorized layers together keep that fraction of their parameters (see lowrank/budget.py).

    >>> from edgecompress.core.models import DigitsCNN
    >>> factorize_linears(DigitsCNN(), keep=0.5)
    {'fc1': (42, 128)}
    """
    return factorize(model, layers, keep=keep, energy=energy, keep_classifier=keep_classifier, convs=False)
