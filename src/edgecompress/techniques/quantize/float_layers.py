"""Which layers an int8 file leaves computing in float, and why: one entry per layer for metrics.json,
the terminal summary and the report.

Read from the written file, not from the recipe: a layer's weights keep their torch name through export and
quantization (`head.weight`, `gru.weight_hh_l0_onnx_int8`; `compact_graph` keeps such names), so every
weight still stored in float, or dequantized to float in front of a float kernel, names its layer.

>>> float_layer_details("final.onnx", {"quantization": {"kept_float": ["fc2"]}})  # doctest: +SKIP
{'left_float': [{'layer': 'fc2', 'op': 'Gemm', 'weights': 'float', 'why': 'kept in float by keep_float or tolerance'}]}
"""

from __future__ import annotations

from pathlib import Path

import onnx

RECURRENT_OPS = ("GRU", "LSTM", "RNN")


def float_layer_details(path: str | Path, details: dict) -> dict:
    """{"left_float": [...]} for the layers of the int8 file at `path` that compute in float, or {} if none.

    `details` is the stage's record so far: its `quantization.kept_float` names the layers kept in float on
    purpose (keep_float, tolerance); any other float layer has an op ONNX Runtime's int8 quantizers skip.
    """
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    kept = set(details.get("quantization", {}).get("kept_float", ()))
    found: dict[str, dict] = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            continue
        for value in node.input:
            tensor = initializers.get(value)
            if node.op_type in RECURRENT_OPS and tensor is None and ".weight" in _source(value, producer):
                layer = _source(value, producer).split(".weight")[0]
                found.setdefault(layer, {
                    "layer": layer, "op": node.op_type, "weights": "int8 per row, dequantized to float",
                    "why": f"ONNX Runtime has no int8 {node.op_type} kernel: the file stores its weights as int8, "
                           "it computes in float",
                })
            elif tensor is not None and ".weight" in value and tensor.data_type in FLOAT_TYPES:
                layer = value.split(".weight")[0]
                why = ("kept in float by keep_float or tolerance" if layer in kept
                       else f"ONNX Runtime's int8 quantizer has no kernel for {node.op_type}")
                found.setdefault(layer, {"layer": layer, "op": node.op_type, "weights": "float", "why": why})
    return {"left_float": list(found.values())} if found else {}


def float_layer_lines(details: dict) -> list[str]:
    """One line per layer left in float, for the terminal and the report."""
    return [f"{e['layer']} ({e['op']}): {e['weights']}; {e['why']}" for e in details.get("left_float", ())]


FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE)


def _source(value: str, producer: dict) -> str:
    """The stored tensor a value is dequantized (and reshaped) from: `gru.weight_hh_l0_onnx_int8`, else ''."""
    node = producer.get(value)
    while node is not None and node.op_type in ("Reshape", "DequantizeLinear"):
        if node.op_type == "DequantizeLinear":
            return node.input[0]
        node = producer.get(node.input[0])
    return ""
