"""Per-MatMul error of dynamic int8 in an ONNX model: which weight MatMuls to keep in float.

`layer_error.py` measures torch layers; a transformer's int8 route quantizes an ONNX graph that has been
rewritten first (outlier smoothing), so its sensitive layers are measured on that graph. Each MatMul with a
stored weight is measured in isolation, like `layer_error.py`: its real float input (exposed as an extra
graph output) times the float weight, against the same input and weight on ORT's dynamic int8 grids
(activations uint8 over the tensor's own min-max per call, as DynamicQuantizeLinear does; weights symmetric
int8 per output column). SQNR of the output, worst first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edgecompress.core.errors import UserError
from edgecompress.techniques.quantize.channel_ranges import tensor_values
from edgecompress.techniques.quantize.layer_error import fake_quantize_activation, fake_quantize_weight, sqnr


@dataclass(frozen=True)
class MatMulError:
    """One MatMul's output error under dynamic int8; `weight` names the stored matrix it multiplies by."""

    node: str
    weight: str
    shape: tuple[int, ...]
    sqnr_db: float

    def to_json(self) -> dict:
        return {"node": self.node, "weight": self.weight, "shape": list(self.shape), "sqnr_db": round(self.sqnr_db, 2)}


def matmul_quantization_error(model: onnx.ModelProto, feeds: Iterable[Mapping[str, np.ndarray]], max_batches: int = 4) -> list[MatMulError]:
    """SQNR in dB of every weight MatMul's output under simulated dynamic int8, worst first.

    >>> [e.node for e in matmul_quantization_error(model, calibration_feeds)[:2]]  # doctest: +SKIP
    ['node_MatMul_83', 'node_MatMul_12']
    """
    weights = {t.name: t for t in model.graph.initializer}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] in weights and len(weights[n.input[1]].dims) == 2]
    if not matmuls:
        raise UserError("keep_float: the model has no MatMul with a stored 2-D weight to measure")
    if any(not n.name for n in matmuls):
        raise UserError("keep_float: the model's MatMul nodes have no names, so none can be kept in float by name")
    float_weights = {n.name: torch.from_numpy(numpy_helper.to_array(weights[n.input[1]]).astype(np.float32)) for n in matmuls}
    int8_weights = {name: fake_quantize_weight(w.T, bits=8, per_channel=True).T for name, w in float_weights.items()}

    inputs = [n.input[0] for n in matmuls]
    signal, noise = dict.fromkeys(float_weights, 0.0), dict.fromkeys(float_weights, 0.0)
    batches = 0
    for _, values in tensor_values(model, inputs, itertools.islice(feeds, max_batches)):
        batches += 1
        for node in matmuls:
            x = torch.from_numpy(values[node.input[0]])
            quantized_x = fake_quantize_activation(x, x.min().item(), x.max().item(), bits=8)
            output = x @ float_weights[node.name]
            signal[node.name] += output.double().square().sum().item()
            noise[node.name] += (output - quantized_x @ int8_weights[node.name]).double().square().sum().item()
    if not batches:
        raise UserError("calibration: no calibration batches were given; pass at least one")
    rows = [MatMulError(n.name, n.input[1], tuple(weights[n.input[1]].dims), sqnr(signal[n.name], noise[n.name])[0]) for n in matmuls]
    return sorted(rows, key=lambda r: r.sqnr_db)
