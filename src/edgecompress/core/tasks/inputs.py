"""A model's inputs: one tensor (an image batch), or named tensors (a tokenized batch: input_ids, attention_mask).

Every place that runs a model (training, scoring, MACs, calibration, latency) goes through these helpers, so a
model family with several inputs needs no code path of its own.
"""

from __future__ import annotations

from typing import Mapping, Union

import torch
from torch import nn

Inputs = Union[torch.Tensor, Mapping[str, torch.Tensor]]


def call_model(model: nn.Module, inputs: Inputs):
    """`model(x)` for one tensor, `model(**inputs)` for named ones.

    >>> call_model(nn.Identity(), torch.ones(1)).tolist()
    [1.0]
    """
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(inputs)


def first_samples(inputs: Inputs, n: int) -> Inputs:
    """The first `n` samples (rows of axis 0) of every input."""
    if isinstance(inputs, Mapping):
        return {name: value[:n].clone() for name, value in inputs.items()}
    return inputs[:n].clone()


def repeat_sample(inputs: Inputs, size: int) -> Inputs:
    """One sample repeated `size` times along the batch axis."""
    def repeat(value: torch.Tensor) -> torch.Tensor:
        return value[:1].repeat(size, *[1] * (value.dim() - 1))

    if isinstance(inputs, Mapping):
        return {name: repeat(value) for name, value in inputs.items()}
    return repeat(inputs)


def float_tensors(inputs: Inputs) -> list[torch.Tensor]:
    """The floating-point tensors among the inputs (token ids are integers and need no NaN check)."""
    values = inputs.values() if isinstance(inputs, Mapping) else [inputs]
    return [v for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()]


def describe(inputs: Inputs) -> str:
    """`1x8x8`, or `input_ids 1x5, attention_mask 1x5`: for messages."""
    if isinstance(inputs, Mapping):
        return ", ".join(f"{name} {'x'.join(map(str, value.shape))}" for name, value in inputs.items())
    return "x".join(map(str, inputs.shape))
