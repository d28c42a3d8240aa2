"""Which path each layer took: what was removed, zeroed, factorized or put on a grid, and how the final file stores it.

Read from the results, not from the recipe: the baseline and final torch models give shapes, zeros and the
levels of float weights; the final ONNX graph gives the stored data type and, for int8 weights, the values
the shipped file really holds (the torch model's levels need not survive quantization). So the table shows
what happened, also when a stage left a layer alone (a layer kept in float, the classifier kept whole).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from torch import nn

from edgecompress.core.measure.params import effective_parameters

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
MAX_GRID_LEVELS = 16  # at most this many distinct values per output channel: the weights sit on a low-bit grid


@dataclass(frozen=True)
class LayerPath:
    name: str
    kind: str
    shape_before: tuple[int, ...]
    shape_after: tuple[int, ...] | None  # None: the layer is gone (factorized into two, or removed)
    weights_before: int
    nonzero_after: int
    stored_as: str
    path: str  # what happened to it, in words


def layer_paths(before: nn.Module, after: nn.Module, final_onnx: str | Path | None) -> list[LayerPath]:
    """One row per weighted layer of `before`, in model order.

    >>> [p.path for p in layer_paths(baseline, pruned, "final.onnx")]  # doctest: +SKIP
    ['channels 32 -> 16 out; int8 per channel', ...]
    """
    stored, stored_values = _stored_types(Path(final_onnx)) if final_onnx is not None else ({}, {})
    after_modules = dict(after.named_modules())
    rows = []
    for name, module in before.named_modules():
        if not isinstance(module, WEIGHTED):
            continue
        weight_before = effective_parameters(module)["weight"]
        current = after_modules.get(name)
        halves = [after_modules.get(f"{name}.{i}") for i in (0, 1)]
        if isinstance(current, WEIGHTED):
            parts, keys = [current], [f"{name}.weight"]
        elif all(isinstance(h, nn.Linear) for h in halves):  # lowrank.factorize_linear: Sequential(first, second)
            parts, keys = halves, [f"{name}.0.weight", f"{name}.1.weight"]
        else:
            parts, keys = [], []
        weights = [effective_parameters(p)["weight"].cpu().numpy() for p in parts]
        integers = [stored_values[k] for k in keys if k in stored_values]
        # integer weights in the shipped file say which values it holds; the torch model's grid would not be true
        steps = _describe(tuple(weight_before.shape), weights, grid=not integers)
        storage = "/".join(sorted({stored.get(k, "unknown") for k in keys})) if stored and keys else "-"
        if storage != "-":  # "unchanged" only when nothing, not even the storage, is known to differ
            values = np.unique(np.concatenate([v.ravel() for v in integers])) if integers else ()
            few = f" with only the values {{{', '.join(str(int(v)) for v in values)}}}" if 0 < len(values) <= MAX_GRID_LEVELS else ""
            steps = [s for s in steps if s != "unchanged"] + [f"stored as {storage}{few}"]
        rows.append(LayerPath(
            name=name,
            kind=type(module).__name__,
            shape_before=tuple(weight_before.shape),
            shape_after=tuple(weights[0].shape) if len(weights) == 1 else None,
            weights_before=weight_before.numel(),
            nonzero_after=int(sum(np.count_nonzero(w) for w in weights)),
            stored_as=storage,
            path="; ".join(steps),
        ))
    return rows


def _describe(shape_before: tuple[int, ...], weights: list[np.ndarray], grid: bool = True) -> list[str]:
    if not weights:
        return ["removed"]
    steps = []
    if len(weights) == 2:
        steps.append(f"factorized to rank {weights[0].shape[0]} (of {min(shape_before[0], shape_before[1])})")
    else:
        out_b, in_b, out_a, in_a = shape_before[0], shape_before[1], weights[0].shape[0], weights[0].shape[1]
        if out_a != out_b:
            steps.append(f"channels {out_b} -> {out_a} out")
        if in_a != in_b:
            steps.append(f"{in_b} -> {in_a} in (follows the layer before)")
    zeros = 1.0 - sum(np.count_nonzero(w) for w in weights) / sum(w.size for w in weights)
    if zeros >= 0.005:
        steps.append(f"{zeros:.0%} of weights zero")
    levels = max(_levels_per_channel(w) for w in weights)
    row = min(w[0].size for w in weights)
    if grid and levels <= MAX_GRID_LEVELS and 2 * levels < row:  # a short row (conv1: 9 weights) has few values anyway
        steps.append(f"on a grid of {levels} levels per channel")
    return steps or ["unchanged"]


def _levels_per_channel(weight: np.ndarray) -> int:
    """The most distinct values (zero included) in any output channel: 3 for ternary weights."""
    rows = np.sort(weight.reshape(weight.shape[0], -1), axis=1)
    return int((np.diff(rows, axis=1) != 0).sum(axis=1).max()) + 1


def _stored_types(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Map '<layer>.weight' to how the ONNX file stores it (fp32, fp16, int8 per channel/tensor, int4 blocks),
    and to its integer values where the file stores int8 weights (inside the file, not in external data).

    Weights keep their layer's name through export and quantization (`fc1.weight`, `fc1.weight_quantized`,
    `fc1.weight_kn...` for int4); their scales may be renamed, so a scale is found through the node using it.
    """
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name: t for t in graph.initializer}
    nbits = {n.input[1] for n in graph.node if n.op_type == "MatMulNBits"}
    out, values = {}, {}
    for name, tensor in initializers.items():
        if name.endswith(".weight"):
            key, kind = name, {onnx.TensorProto.FLOAT: "fp32", onnx.TensorProto.FLOAT16: "fp16"}.get(tensor.data_type)
        elif name.endswith(".weight_quantized"):
            key, scale = name[: -len("_quantized")], _scale_of(graph, name, initializers)
            kind = "int8" if scale is None else "int8 per channel" if int(np.prod(scale.dims)) > 1 else "int8 per tensor"
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                values[key] = numpy_helper.to_array(tensor)
        elif name in nbits:
            key, kind = name.split(".weight")[0] + ".weight", "int4 blocks"
        else:
            continue
        if kind is not None:
            out[key] = kind
    return out, values


def _scale_of(graph, weight: str, initializers: dict):
    """The scale tensor of a quantized weight: named `<weight>_scale`, or the input after it in its node."""
    named = initializers.get(weight.replace("_quantized", "_scale"))
    if named is not None:
        return named
    for node in graph.node:
        if node.op_type in ("QLinearConv", "QGemm", "DequantizeLinear") and weight in node.input:
            index = list(node.input).index(weight) + 1
            return initializers.get(node.input[index]) if index < len(node.input) else None
    return None
