"""Given a target size, which layers must shrink and by how much, largest layers first.

The advice counts what the exported file will hold: batch-norm layers fold into the layer before them at
export, so they are neither counted at their state_dict size nor proposed for shrinking; and the int8
estimate counts as int8 only the layers the quantize stage's default route (static int8) really quantizes:
the ops in ONNX Runtime's static quantizer registry, plus GRU and LSTM weights (`recurrent_int8.py`: int8
per row, biases in float). The others (LayerNorm, GroupNorm, PReLU, ...) stay float, at 4 B per weight.

When int8 alone is not enough, given the model it also estimates channel pruning then int8 (`Route`): the
model is pruned for real, on a copy, as the prune stage's pattern channel prunes it (Torch-Pruning; the
output width is never cut), and its int8 size estimated the same way. A size counts as fitting for sure only
with room left for the file's graph (`GRAPH_ALLOWANCE`); what is too close to call, or out of reach of
channels -75%, is for `edgecompress fit`, which builds and measures the real files.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from edgecompress.core.errors import RunFailure, UserError, first_line
from edgecompress.inspect.layers import LayerRow, LayerTable, layer_table

INT8_BYTES_PER_PARAM = 1.0
CHANNEL_AMOUNTS = (0.5, 0.75)  # the channel fractions fit's candidates remove (orchestration/search/fit.py)
# The estimate counts tensors; the file adds its graph: 1.4-1.6 KB on the small models of tests/inspect/test_target.py
# (the demo CNN's channels -50% int8 file holds 14.2 KB of tensors in 15.6 KB), more with more nodes.
GRAPH_ALLOWANCE = (2_500, 0.05)  # bytes, or this fraction of the estimate if more
# torch layer type -> the ONNX op torch.onnx writes for its weights
ONNX_OPS = {
    "Linear": "Gemm", "Bilinear": "Bilinear", "Embedding": "Gather", "EmbeddingBag": "EmbeddingBag",
    **dict.fromkeys(("Conv1d", "Conv2d", "Conv3d"), "Conv"),
    **dict.fromkeys(("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"), "ConvTranspose"),
    "LSTM": "LSTM", "GRU": "GRU", "RNN": "MatMul", "MultiheadAttention": "MatMul",  # torch.onnx unrolls nn.RNN into MatMuls
    "LayerNorm": "LayerNormalization", "GroupNorm": "GroupNormalization", "PReLU": "PRelu",
    **dict.fromkeys(("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"), "InstanceNormalization"),
}


@dataclass(frozen=True)
class LayerCut:
    name: str
    bytes_now: int
    bytes_after: int

    @property
    def keep_fraction(self) -> float:
        return self.bytes_after / self.bytes_now if self.bytes_now else 1.0

    @property
    def factor(self) -> float:
        return self.bytes_now / self.bytes_after if self.bytes_after else float("inf")


@dataclass(frozen=True)
class Route:
    """Remove `channels` of every prunable layer's output channels, then int8: the estimated size, or None with
    the reason when pattern channel cannot prune the model."""

    channels: float
    int8_bytes: int | None
    problem: str = ""


@dataclass(frozen=True)
class TargetAdvice:
    target_bytes: int
    current_bytes: int
    int8_bytes: int
    cuts: list[LayerCut]
    reachable: bool
    min_keep: float
    folded: tuple[str, ...] = ()  # batch-norm layers folded at export: not shrunk
    kept_float: tuple[tuple[str, str], ...] = ()  # (layer, type) that int8 leaves in float
    routes: tuple[Route, ...] = ()  # channel pruning then int8, mildest first, until one surely fits

    @property
    def fits_already(self) -> bool:
        return self.current_bytes <= self.target_bytes

    @property
    def int8_fits(self) -> bool:
        return self.int8_bytes <= self.target_bytes

    def fits_surely(self, estimate: int | None) -> bool:
        """Whether a file estimated at `estimate` bytes of tensors fits, with room for its graph."""
        return estimate is not None and estimate + max(GRAPH_ALLOWANCE[0], GRAPH_ALLOWANCE[1] * estimate) <= self.target_bytes

    @property
    def sure(self) -> bool:
        """Whether the advice can say for sure that something fits: the model as it is, int8, or a route."""
        return self.fits_already or any(self.fits_surely(size) for size in (self.int8_bytes, *(r.int8_bytes for r in self.routes)))


def advise_target_size(table: LayerTable, target_bytes: int, min_keep: float = 0.1, model: nn.Module | None = None) -> TargetAdvice:
    """Shrink the largest layers first, each down to at most `min_keep` of its bytes, until the model fits.

    A layer is cut only as far as needed: the first layer that covers the remaining excess takes just that.
    Sizes are those of the exported file: a batch-norm counts as the bias it folds into and is never cut.
    `int8_bytes` estimates int8 storage: one byte per parameter plus a float32 scale per output channel for
    the layers the int8 route handles (a GRU/LSTM: its weight matrices, with biases at 4 B), 4 B per parameter
    for the others (`kept_float`). Given the `model` (the one `table` describes), when int8 alone does not
    surely fit, `routes` estimates channel pruning then int8 at each of `CHANNEL_AMOUNTS` until one does.

    >>> from edgecompress.inspect.layers import layer_table
    >>> from edgecompress.core.models import DigitsCNN
    >>> [c.name for c in advise_target_size(layer_table(DigitsCNN(), (1, 1, 8, 8)), 100_000).cuts]
    ['fc1', 'conv2']
    """
    current = sum(row.export_bytes for row in table.rows)
    excess = current - target_bytes
    cuts: list[LayerCut] = []
    for row in sorted((r for r in table.rows if not r.folds_at_export), key=lambda r: (-r.bytes, r.name)):
        if excess <= 0:
            break
        if row.bytes == 0:
            continue
        removable = int(row.bytes * (1.0 - min_keep))
        cut = min(excess, removable)
        cuts.append(LayerCut(row.name, row.bytes, row.bytes - cut))
        excess -= cut
    kept_float = tuple((r.name, r.type) for r in table.rows if _stays_float(r))
    folded = tuple(r.name for r in table.rows if r.folds_at_export)
    advice = TargetAdvice(target_bytes, current, _int8_bytes(table), cuts, excess <= 0, min_keep, folded, kept_float)
    if model is None or advice.sure:
        return advice
    routes = []
    for amount in CHANNEL_AMOUNTS:
        routes.append(_channel_route(model, table.input_shape, amount))
        if routes[-1].int8_bytes is None or advice.fits_surely(routes[-1].int8_bytes):
            break
    return dataclasses.replace(advice, routes=tuple(routes))


def _channel_route(model: nn.Module, input_shape: tuple[int, ...], amount: float) -> Route:
    """`model`'s int8 size after the prune stage's pattern channel removes `amount` of the channels (on a copy)."""
    from edgecompress.techniques.prune.config import Prune
    from edgecompress.techniques.prune.engine import prune_model  # Torch-Pruning: only when a route is asked for
    from edgecompress.techniques.prune.patterns import Channels

    pruned = copy.deepcopy(model).eval()
    try:
        prune_model(pruned, Prune(pattern=Channels(), amount=amount), torch.zeros(input_shape), train=None)
    except (UserError, RunFailure) as exc:
        return Route(amount, None, first_line(exc))
    return Route(amount, _int8_bytes(layer_table(pruned, input_shape)))


def _int8_bytes(table: LayerTable) -> int:
    """Quantized layers' weights as int8 plus a float32 scale per output channel; layers int8 leaves in float,
    buffers and non-float tensors as they are; folded batch-norms as their bias."""
    total = 0
    for row in table.rows:
        if row.folds_at_export or _stays_float(row) or not row.params:
            total += row.export_bytes
        elif ONNX_OPS.get(row.type) in RECURRENT_INT8_OPS:  # each weight matrix int8 + a scale per row; biases float
            matrix_params = sum(r * c for r, c in row.matrices)
            total += matrix_params + 4 * sum(r for r, _ in row.matrices) + 4 * (row.params - matrix_params)
        elif row.dtype.startswith(("float", "bfloat")):
            out_channels = row.weight_shape[0] if row.weight_shape else 1
            total += int(row.params * INT8_BYTES_PER_PARAM) + 4 * out_channels + row.buffer_bytes
        else:
            total += row.bytes
    return total


def _stays_float(row: LayerRow) -> bool:
    """A float layer with weights whose ONNX op ORT's static quantizer has no int8 kernel for (or whose type is
    not one torch.onnx is known to export: a custom module is assumed float, the safe side of a size estimate)."""
    if row.folds_at_export or not row.params or not row.dtype.startswith(("float", "bfloat")):
        return False
    return ONNX_OPS.get(row.type) not in _route_int8_ops()


RECURRENT_INT8_OPS = ("GRU", "LSTM")  # quantize/recurrent_int8.py, after ORT's quantizer


@cache
def _route_int8_ops() -> frozenset[str]:
    """The ONNX ops the default quantize route stores as int8: ORT's static registry, and GRU/LSTM weights."""
    from onnxruntime.quantization.registry import QLinearOpsRegistry  # not at import: `inspect` stays light

    return frozenset(QLinearOpsRegistry) | frozenset(RECURRENT_INT8_OPS)
