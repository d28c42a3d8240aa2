"""The per-layer table: parameters, bytes, MACs, sparsity and dtype of every module that holds weights or does work."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgecompress.errors import UserError
from edgecompress.measure.macs import count_macs

@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    weight_shape: tuple[int, ...]  # shape of the main weight; () for rows without one
    params: int
    bytes: int  # parameters and buffers held by this layer
    buffer_bytes: int  # of which buffers (e.g. BatchNorm running statistics)
    macs: int
    zeros: int
    dtype: str

    @property
    def shape(self) -> str:
        return "x".join(map(str, self.weight_shape)) or "-"

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


@dataclass(frozen=True)
class LayerTable:
    rows: list[LayerRow]
    input_shape: tuple[int, ...]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def zeros(self) -> int:
        return sum(r.zeros for r in self.rows)

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


def layer_table(model: nn.Module, input_shape: tuple[int, ...]) -> LayerTable:
    """Build the table by running one forward pass on zeros of `input_shape` (batch axis included).

    >>> from edgecompress.models import DigitsCNN
    >>> layer_table(DigitsCNN(), (1, 1, 8, 8)).params
    53002
    """
    example = torch.zeros(input_shape)
    try:
        _, macs = count_macs(model, example)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        shape = "x".join(map(str, input_shape))
        raise UserError(f"input shape: {shape} does not fit {type(model).__name__}: {first}") from None
    rows = []
    for name, module in model.named_modules():
        tensors = dict(module.named_parameters(recurse=False))
        buffers = dict(module.named_buffers(recurse=False))
        if not tensors and not buffers and name not in macs:
            continue
        rows.append(_row(name or "(root)", module, tensors, buffers, macs.get(name, 0)))
    return LayerTable(rows, tuple(input_shape))


def _row(name: str, module: nn.Module, params: dict, buffers: dict, macs: int) -> LayerRow:
    main = params.get("weight", params.get("weight_orig", next(iter(params.values()), None)))
    effective = [_effective(module, key, p) for key, p in params.items() if not key.endswith("_mask")]
    return LayerRow(
        name=name,
        type=type(module).__name__,
        weight_shape=tuple(main.shape) if main is not None else (),
        params=sum(p.numel() for p in effective),
        bytes=sum(t.numel() * t.element_size() for t in [*params.values(), *buffers.values()]),
        buffer_bytes=sum(t.numel() * t.element_size() for t in buffers.values()),
        macs=macs,
        zeros=sum(int((p == 0).sum()) for p in effective),
        dtype=str(main.dtype).replace("torch.", "") if main is not None else "-",
    )


def _effective(module: nn.Module, key: str, param: torch.Tensor) -> torch.Tensor:
    """For torch.nn.utils.prune's `weight_orig`, the masked weight the forward pass uses."""
    if key.endswith("_orig") and isinstance(getattr(module, key[: -len("_orig")], None), torch.Tensor):
        return getattr(module, key[: -len("_orig")]).detach()
    return param.detach()
