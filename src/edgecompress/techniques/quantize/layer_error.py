"""Per-layer quantization error: which Linear/Conv2d layers int8 hurts, measured on calibration data.

When a quantized model loses accuracy, the fix is usually to keep one or two layers in float (or give them
per-channel scales). This finds them. Each layer is measured in isolation: its real float input (captured by
a forward hook) goes through the float layer and through a simulated-quantized copy, and the SQNR of the
output is reported. Errors are not propagated from earlier layers, so a bad layer is not hidden behind, or
blamed for, the layers before it.

The simulation is plain tensor arithmetic ("fake quantization": quantize, then dequantize in float), not
torch.ao (deprecated, FINDINGS sec. 6). It mirrors what ONNX Runtime does: weights symmetric int8 per output
channel, activations asymmetric uint8 from the min-max range seen in calibration (range widened to include 0,
so zero is exact). Bias stays float (ORT stores it as int32 at a scale fine enough to ignore).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from edgecompress.core.errors import UserError

MEASURED_LAYERS = (nn.Linear, nn.Conv2d)
MIN_BITS, MAX_BITS = 2, 8


@dataclass(frozen=True)
class LayerError:
    """One layer's output error under quantization.

    `sqnr_db` = 10 log10(signal power / noise power); +inf when quantization changes nothing. Each bit adds
    about 6 dB. `relative_error` = ||y - y_q|| / ||y|| = 10 ** (-sqnr_db / 20).
    """

    name: str
    layer_type: str
    sqnr_db: float
    relative_error: float


def fake_quantize_weight(weight: torch.Tensor, bits: int = 8, per_channel: bool = True) -> torch.Tensor:
    """`weight` rounded to a symmetric `bits`-bit grid and returned in float: what int8 storage keeps.

    The grid is [-qmax, qmax] * scale with qmax = 2**(bits-1) - 1 and scale = max|w| / qmax, per output channel
    (dim 0) or for the whole tensor. An all-zero channel gets scale 1 instead of 0 (no division by zero; its
    values are 0 either way).

    >>> fake_quantize_weight(torch.tensor([[7.0, 2.4, -1.0], [0.0, 0.0, 0.0]]), bits=4)
    tensor([[ 7.,  2., -1.],
            [ 0.,  0.,  0.]])
    """
    _check_bits(bits, "bits")
    qmax = 2 ** (bits - 1) - 1
    weight = weight.detach()
    if per_channel and weight.dim() > 1:
        max_abs = weight.abs().amax(dim=tuple(range(1, weight.dim())), keepdim=True)
    else:
        max_abs = weight.abs().amax()
    scale = torch.where(max_abs > 0, max_abs / qmax, torch.ones_like(max_abs))
    return torch.clamp(torch.round(weight / scale), -qmax, qmax) * scale


def fake_quantize_activation(x: torch.Tensor, low: float, high: float, bits: int = 8) -> torch.Tensor:
    """`x` rounded to an asymmetric unsigned `bits`-bit grid spanning [low, high] (widened to include 0).

    >>> fake_quantize_activation(torch.tensor([0.0, 0.3, 1.0]), low=0.0, high=1.0, bits=2)
    tensor([0.0000, 0.3333, 1.0000])
    """
    _check_bits(bits, "activation_bits")
    low, high = min(low, 0.0), max(high, 0.0)
    levels = 2**bits - 1
    scale = (high - low) / levels if high > low else 1.0  # a constant-zero input: any scale keeps it exact
    zero_point = round(-low / scale)
    return (torch.clamp(torch.round(x / scale) + zero_point, 0, levels) - zero_point) * scale


def layer_quantization_error(
    model: nn.Module,
    batches: Iterable,
    max_batches: int = 8,
    bits: int = 8,
    per_channel: bool = True,
    quantize_activations: bool = True,
    activation_bits: int = 8,
    layers: tuple[str, ...] = ("*",),
) -> list[LayerError]:
    """SQNR of every Linear/Conv2d layer's output under simulated quantization, worst layer first.

    `batches` yields `(inputs, targets)` (targets are ignored) or bare input tensors; the first `max_batches`
    are used. `layers` are fnmatch patterns on module names (`("fc*",)`); layers the model does not call on
    this data are left out. `bits` is the weight width, `activation_bits` the input width. The model is not
    changed.

    >>> rows = layer_quantization_error(trained_digits_mlp, digits_task().train_loader)  # doctest: +SKIP
    >>> [(r.name, round(r.sqnr_db)) for r in rows]  # doctest: +SKIP
    [('fc3', 50), ('fc1', 50), ('fc2', 56)]
    """
    _check_bits(bits, "bits")
    _check_bits(activation_bits, "activation_bits")
    if isinstance(max_batches, bool) or not isinstance(max_batches, int) or max_batches < 1:
        raise UserError(f"max_batches: must be a positive integer, got {max_batches!r}")
    selected = _select_layers(model, layers)
    inputs = _first_inputs(batches, max_batches)

    was_training = model.training
    model.eval()
    try:
        ranges = _input_ranges(model, selected, inputs) if quantize_activations else {}
        weights = {name: fake_quantize_weight(m.weight, bits, per_channel) for name, m in selected.items()}
        signal, noise, calls = dict.fromkeys(selected, 0.0), dict.fromkeys(selected, 0.0), dict.fromkeys(selected, 0)

        def measure(name: str):
            def hook(module, args, output):
                x = args[0]
                if quantize_activations:
                    x = fake_quantize_activation(x, *ranges[name], bits=activation_bits)
                quantized = _forward_with_weight(module, x, weights[name])
                signal[name] += output.double().square().sum().item()
                noise[name] += (output - quantized).double().square().sum().item()
                calls[name] += 1

            return hook

        _run_with_hooks(model, {name: (m, measure(name)) for name, m in selected.items()}, inputs)
    finally:
        model.train(was_training)

    rows = [
        LayerError(name, type(m).__name__, *sqnr(signal[name], noise[name]))
        for name, m in selected.items()
        if calls[name]  # a layer the model never calls on this data has nothing to report
    ]
    return sorted(rows, key=lambda r: r.sqnr_db)


def _check_bits(bits: int, parameter: str) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise UserError(f"{parameter}: must be an integer from {MIN_BITS} to {MAX_BITS}, got {bits!r}")


def _select_layers(model: nn.Module, patterns: tuple[str, ...]) -> dict[str, nn.Module]:
    if isinstance(patterns, str):
        raise UserError(f"layers: give a tuple of name patterns, e.g. ({patterns!r},), not a string")
    candidates = {name: m for name, m in model.named_modules() if isinstance(m, MEASURED_LAYERS)}
    if not candidates:
        raise UserError(f"model: {type(model).__name__} has no Linear or Conv2d layer to measure")
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in candidates):
            raise UserError(f"layers: pattern {pattern!r} matches no Linear/Conv2d layer; layers are: {', '.join(candidates)}")
    return {n: m for n, m in candidates.items() if any(fnmatch.fnmatchcase(n, p) for p in patterns)}


def _first_inputs(batches: Iterable, max_batches: int) -> list[torch.Tensor]:
    """The model inputs of the first batches, kept so that a one-shot iterator can be read twice."""
    inputs = []
    for batch in batches:
        inputs.append(batch if isinstance(batch, torch.Tensor) else batch[0])
        if len(inputs) == max_batches:
            break
    if not inputs:
        raise UserError("batches: the calibration data yielded no batches; pass at least one (inputs, targets) batch")
    return inputs


def _input_ranges(model: nn.Module, selected: dict[str, nn.Module], inputs: list[torch.Tensor]) -> dict:
    """(min, max) of each layer's input over all calibration batches: the activation quantization range."""
    ranges = {name: (math.inf, -math.inf) for name in selected}

    def observe(name: str):
        def hook(module, args, output):
            low, high = ranges[name]
            ranges[name] = (min(low, args[0].min().item()), max(high, args[0].max().item()))

        return hook

    _run_with_hooks(model, {name: (m, observe(name)) for name, m in selected.items()}, inputs)
    return ranges


def _run_with_hooks(model: nn.Module, hooks: dict, inputs: list[torch.Tensor]) -> None:
    handles = [module.register_forward_hook(hook) for module, hook in hooks.values()]
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for x in inputs:
                model(x.to(device))
    finally:
        for handle in handles:
            handle.remove()


def _forward_with_weight(module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.Linear):
        return F.linear(x, weight, module.bias)
    return module._conv_forward(x, weight, module.bias)  # handles padding modes, groups, dilation


def sqnr(signal: float, noise: float) -> tuple[float, float]:
    """(SQNR in dB, relative error); exact outputs give +inf dB, a zero output with noise gives -inf."""
    if noise == 0:
        return math.inf, 0.0
    if signal == 0:
        return -math.inf, math.inf
    return 10 * math.log10(signal / noise), math.sqrt(noise / signal)
