"""int8 weights for the GRU and LSTM nodes ONNX Runtime's quantizers leave in float.

ORT's static quantizer has no recurrent op in its registry, and its dynamic one only LSTM (DynamicQuantizeLSTM,
which needs W and R as stored initializers). So:
1. the W, R and B a recurrent node computes from stored tensors alone are folded into stored tensors
   (`onnx/recurrent.py`; our export already did, under the torch layer's name);
2. an LSTM becomes ORT's DynamicQuantizeLSTM (int8 weights, activations quantized per call), whatever the
   quantize mode;
3. every W and R still float (GRU: no int8 kernel in ORT) is stored as int8 with one float32 scale per row
   (symmetric, per gate row and direction) and a DequantizeLinear in front: 1 byte per weight in the file, and
   ORT's float kernel at run time ("weight-only int8": smaller, not faster).
Measured on this machine (AMD Zen 5 class, ORT 1.32, one thread, a Linear head after the layer, median of
30-300 calls): GRU(8, 64) fp32 0.016 ms at batch 1, weight-only 0.021 ms; at batch 256 0.86 ms both.
GRU(8, 256): 0.078 / 0.100 ms at batch 1. LSTM(8, 256) at batch 1: fp32 0.096 ms, weight-only 0.135 ms,
DynamicQuantizeLSTM 0.048 ms (step 2's reason); LSTM(8, 64): 0.018 ms fp32 and DynamicQuantizeLSTM.
(torch.nn.RNN exports unrolled into MatMul nodes, which the quantizers handle themselves.)

>>> model, notes = recurrent_int8(onnx.load("int8.onnx"), weight_bits=7)  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgecompress.core.verbosity import quiet_libraries
from edgecompress.onnx.graph_passes import remove_unused
from edgecompress.onnx.recurrent import fold_recurrent_weights

RECURRENT_OPS = ("GRU", "LSTM", "RNN")
WEIGHT_INPUTS = (1, 2)  # W (input weights) and R (recurrence weights); B (index 3) stays float: a few hundred values
INT8_MAX = 127  # dequantized to float before any arithmetic: no integer accumulation to saturate (FINDINGS sec. 7)


def recurrent_int8(model: onnx.ModelProto, weight_bits: int = 7) -> onnx.ModelProto:
    """Steps 1-3 above on a quantized `model` (a new ModelProto; one without recurrent nodes comes back as it
    was). `weight_bits` 7 keeps DynamicQuantizeLSTM's weights within +-64, exact on every CPU class."""
    if not any(node.op_type in RECURRENT_OPS for node in model.graph.node):
        return model
    model = fold_recurrent_weights(model)
    if any(node.op_type == "LSTM" for node in model.graph.node):
        model = _dynamic_lstm(model, weight_bits)
    return recurrent_weights_int8(model)[0]


def _dynamic_lstm(model: onnx.ModelProto, weight_bits: int) -> onnx.ModelProto:
    """ORT's dynamic quantizer on the LSTM nodes alone. Its callers run it inside `ort_working_directory`,
    where ORT's leftovers go."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="edgecompress-lstm-") as folder:
        work = Path(folder)
        onnx.save_model(model, str(work / "folded.onnx"))
        with quiet_libraries(loggers=("",), stderr=True):  # ORT's advice to pre-process: not needed for stored LSTM weights
            quantize_dynamic(
                str(work / "folded.onnx"), str(work / "lstm.onnx"), op_types_to_quantize=["LSTM"], per_channel=True,
                reduce_range=weight_bits == 7, weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        return onnx.load(str(work / "lstm.onnx"))


def recurrent_weights_int8(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """`model` with every recurrent node's float W and R stored as int8 + per-row scales (a new ModelProto),
    and the names of the nodes changed (step 3 above)."""
    model = fold_recurrent_weights(model)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    changed, new_nodes = [], []
    for node in graph.node:
        if node.op_type in RECURRENT_OPS:
            for index in WEIGHT_INPUTS:
                name = node.input[index] if len(node.input) > index else ""
                tensor = initializers.get(name)
                if tensor is None or tensor.data_type != onnx.TensorProto.FLOAT:
                    continue
                node.input[index], nodes, tensors = _dequantized(numpy_helper.to_array(tensor), name)
                new_nodes += nodes
                graph.initializer.extend(tensors)
                if node.name not in changed:
                    changed.append(node.name)
        new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)  # each dequantization right before its node: the list stays topologically sorted
    return remove_unused(model), changed


def _dequantized(weight: np.ndarray, name: str) -> tuple[str, list[onnx.NodeProto], list[onnx.TensorProto]]:
    """int8 rows + one scale per row -> DequantizeLinear -> Reshape back to `weight`'s [directions, rows, cols].

    The int8 tensor is `<name>_int8` (a layer's name survives `compact_graph`); the bookkeeping is not."""
    stem, book = f"{name}_int8", name.replace(".weight", "_w")
    rows = weight.reshape(-1, weight.shape[-1]).astype(np.float32)
    peak = np.abs(rows).max(axis=1)
    scale = np.where(peak > 0, peak / INT8_MAX, 1.0).astype(np.float32)
    quantized = np.clip(np.rint(rows / scale[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    tensors = [
        numpy_helper.from_array(quantized, f"{stem}"),
        numpy_helper.from_array(scale, f"{book}_scale"),
        numpy_helper.from_array(np.array(weight.shape, dtype=np.int64), f"{book}_shape"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", [stem, f"{book}_scale"], [f"{book}_dq"], name=f"{book}_dq", axis=0),
        helper.make_node("Reshape", [f"{book}_dq", f"{book}_shape"], [f"{book}_float"], name=f"{book}_reshape"),
    ]
    return f"{book}_float", nodes, tensors
