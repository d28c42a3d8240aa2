"""The per-layer table: parameters, bytes, MACs, sparsity and dtype of every module that holds weights or does work."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgecompress.core.errors import UserError, first_line
from edgecompress.core.measure.macs import count_macs
from edgecompress.core.measure.params import (
    effective_parameters,
    is_parametrization_internal,
    stored_tensors,
)
from edgecompress.core.tasks.inputs import Inputs


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
    # A batch-norm with running statistics: the exporter folds it into the layer before it (its scale into
    # the weights, its shift into the bias), so what is left in the file is at most that bias (4 B per channel).
    folded_bytes: int | None = None
    matrices: tuple[tuple[int, int], ...] = ()  # (rows, columns) of each 2-D weight: a GRU/LSTM has several

    @property
    def folds_at_export(self) -> bool:
        return self.folded_bytes is not None

    @property
    def export_bytes(self) -> int:
        return self.bytes if self.folded_bytes is None else self.folded_bytes

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

    params = property(lambda self: self._total("params"))
    bytes = property(lambda self: self._total("bytes"))
    macs = property(lambda self: self._total("macs"))
    zeros = property(lambda self: self._total("zeros"))

    def _total(self, column: str) -> int:
        return sum(getattr(row, column) for row in self.rows)

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


def layer_table(model: nn.Module, input_shape: tuple[int, ...], example: Inputs | None = None) -> LayerTable:
    """Build the table by running one forward pass on zeros of `input_shape` (batch axis included), or on
    `example` (e.g. a tokenized sentence) when given.

    >>> from edgecompress.core.models import DigitsCNN
    >>> layer_table(DigitsCNN(), (1, 1, 8, 8)).params
    53002
    """
    example = torch.zeros(input_shape) if example is None else example
    try:
        _, macs = count_macs(model, example)
    except Exception as exc:
        first = first_line(exc)
        shape = "x".join(map(str, input_shape))
        raise UserError(f"input shape: {shape} does not fit {type(model).__name__}: {first}") from None
    rows = []
    for name, module in model.named_modules():
        if is_parametrization_internal(name):
            continue  # counted on the module they parametrize
        params = effective_parameters(module)
        stored = stored_tensors(module)
        if not params and not stored and name not in macs:
            continue
        rows.append(_row(name or "(root)", module, params, stored, macs.get(name, 0)))
    return LayerTable(rows, tuple(input_shape))


def _row(name: str, module: nn.Module, params: dict, stored: list, macs: int) -> LayerRow:
    main = params.get("weight", next(iter(params.values()), None))
    param_ids = {id(p) for p in module.parameters()}
    buffers = [t for t in stored if id(t) not in param_ids]
    return LayerRow(
        name=name,
        type=type(module).__name__,
        weight_shape=tuple(main.shape) if main is not None else (),
        params=sum(p.numel() for p in params.values()),
        bytes=sum(t.numel() * t.element_size() for t in stored),
        buffer_bytes=sum(t.numel() * t.element_size() for t in buffers),
        macs=macs,
        zeros=sum(int((p == 0).sum()) for p in params.values()),
        dtype=str(main.dtype).replace("torch.", "") if main is not None else "-",
        folded_bytes=4 * module.num_features if _folds_at_export(module) else None,
        matrices=tuple((p.shape[0], p.shape[1]) for p in params.values() if p.dim() == 2),
    )


def _folds_at_export(module: nn.Module) -> bool:
    """Batch-norm in eval mode with running statistics is a fixed per-channel affine map: the exporter folds
    it into the convolution or Linear before it (measured: no BatchNormalization node is left)."""
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
