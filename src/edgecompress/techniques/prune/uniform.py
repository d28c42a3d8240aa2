"""Uniform thinning: a model's own architecture with every layer's channels cut at one ratio.

This is the "smaller dense model" of a sweep for any architecture: the prune engine's channel pattern
(Torch-Pruning for Linear/conv layers, `recurrent.py` for GRU/LSTM/RNN hidden units) removes the same fraction
of every layer's output channels, keeping what must stay whole: the model's output width, and the layers
coupled to it. Which channels go does not matter to its use: the thinned model is re-initialised and trained
from scratch.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgecompress.core.errors import RunFailure, UserError, first_line
from edgecompress.techniques.prune.config import Prune
from edgecompress.techniques.prune.criteria import Magnitude
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.patterns import Channels
from edgecompress.techniques.prune.selection import PRUNABLE_TYPES


def thin_uniformly(model: nn.Module, example_input: torch.Tensor, width: float) -> nn.Module:
    """A copy of `model` keeping `width` (0 < width <= 1) of every prunable layer's output channels.

    Torch-Pruning keeps int(channels * width) channels of a layer, and leaves a layer whole when that would
    be none: `layer_widths` tells the two apart.

    >>> from edgecompress.core.models import DigitsCNN
    >>> thin_uniformly(DigitsCNN(), torch.zeros(1, 1, 8, 8), 0.5).conv2.out_channels
    32
    """
    if not 0.0 < width <= 1.0:
        raise ValueError(f"width must be in (0, 1], got {width}")
    thinned = copy.deepcopy(model)
    if width == 1.0:
        return thinned
    config = Prune(pattern=Channels(), criterion=Magnitude(norm=2), amount=1.0 - width, keep_classifier=False)
    prune_model(thinned, config, example_input, train=_no_training)
    return thinned


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output channels of each Linear/conv layer and hidden units of each recurrent one, by layer name."""
    widths = {}
    for name, module in model.named_modules():
        if isinstance(module, tuple(PRUNABLE_TYPES.values())):
            width = getattr(module, "out_features", None) or getattr(module, "out_channels", None) or getattr(module, "hidden_size", None)
            widths[name] = int(width)
    return widths


def thinned_layers(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """The layers uniform thinning shrinks (at half width): every prunable layer but the model's outputs, the
    layers coupled to them and one-channel layers. A UserError if there is none, or if Torch-Pruning cannot
    trace the model."""
    nothing = f"cannot thin {type(model).__name__} uniformly: no Linear, conv or recurrent layer can lose a channel without cutting the model's outputs"
    before = layer_widths(model)
    try:
        half = layer_widths(thin_uniformly(model, example_input, 0.5))
    except UserError as exc:  # the engine's refusal suggests other prune settings, which do not apply here
        raise UserError(nothing) from exc
    except RunFailure as exc:
        raise UserError(f"cannot thin {type(model).__name__} uniformly: {first_line(exc)}") from exc
    shrunk = [name for name, width in half.items() if width < before[name]]
    if not shrunk:
        raise UserError(nothing)
    return shrunk


def _no_training(*args, **kwargs) -> None:
    """One-shot magnitude pruning never trains."""
