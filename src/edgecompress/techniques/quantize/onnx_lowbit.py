"""Lower widths in ONNX Runtime: fp16 casting and int4 weight-only (MatMulNBits).

- fp16 halves the file, but this CPU has no fp16 vector instructions: FINDINGS measured 0.24x-0.93x the
  fp32 speed. It is a storage format here, and the report shows the slowdown.
- int4 weight-only stores 4-bit weights in blocks of `block_size` with one scale per block (~0.56 B/param
  at block 32) and dequantizes inside ONNX Runtime's MatMulNBits kernel: a memory-bound win for large layers
  at batch 1 (FINDINGS: up to 9x), about neutral at large batches. Only MatMul weights qualify, so Gemm
  (how nn.Linear exports) is first rewritten as MatMul + Add; convolutions stay float.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgecompress.core.errors import RunFailure, UserError, first_line
from edgecompress.core.verbosity import quiet_libraries
from edgecompress.onnx.graph_passes import remove_unused
from edgecompress.storage.files import atomic_path


def cast_fp16(source: str | Path, target: str | Path) -> Path:
    """Write `source` with float16 weights and compute; inputs and outputs stay float32 for the caller."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    try:
        with _quiet():
            converted = convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:
        raise RunFailure(f"quantize: fp16 conversion failed: {first_line(exc)}") from exc
    return _save(converted, target)


def quantize_int4_weights(
    source: str | Path | onnx.ModelProto, target: str | Path, block_size: int = 32, accuracy_level: int = 4, gptq_calibration: list | None = None
) -> Path:
    """Write `source` (a file, or a graph already loaded, which is rewritten in place) with every MatMul/Gemm
    weight as symmetric int4 in blocks (MatMulNBits).

    ONNX Runtime's quantizer picks each block's scale and rounds to nearest; with `gptq_calibration` (input
    feeds) the integers are then re-rounded by GPTQ on the same grid (`onnx_gptq.py`). `accuracy_level` is
    MatMulNBits' compute type: 0/1 dequantize to float32, 4 quantizes the activations to int8 per block.

    >>> quantize_int4_weights("mlp.onnx", "mlp.int4.onnx", block_size=32)  # doctest: +SKIP
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from edgecompress.techniques.quantize.onnx_gptq import gptq_matmul_nbits_weights, input_hessians, matmul_weights

    if block_size < 16 or block_size & (block_size - 1):
        raise UserError(f"quantize.block_size: must be a power of two >= 16, got {block_size}")
    model = gemm_to_matmul(source if isinstance(source, onnx.ModelProto) else onnx.load(str(source)))
    if gptq_calibration is not None:  # read before the quantizer rewrites the graph in place
        weights = matmul_weights(model)
        hessians = input_hessians(model, sorted({activation for activation, _ in weights.values()}), gptq_calibration)
    try:
        with _quiet():
            quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=block_size, is_symmetric=True, accuracy_level=accuracy_level)
            quantizer.process()
    except Exception as exc:
        raise RunFailure(f"quantize: int4 weight-only quantization failed: {first_line(exc)}") from exc
    quantized = quantizer.model.model
    if not any(node.op_type == "MatMulNBits" for node in quantized.graph.node):
        raise UserError("quantize.mode: int4 applies to MatMul/Linear weights and this model has none; use static int8")
    if gptq_calibration is not None:
        gptq_matmul_nbits_weights(quantized, weights, hessians)
    return _save(quantized, target)


def gemm_to_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite plain Gemm nodes (alpha = beta = 1, no transA, constant B) as MatMul (+ Add for the bias).

    Written by hand because neither onnx nor ORT exposes this rewrite on its own; ORT does it only inside
    quantize_dynamic.
    """
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type != "Gemm" or not plain or node.input[1] not in weights:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(weights[node.input[1]])
        if attrs.get("transB", 0):
            weight = np.ascontiguousarray(weight.T)
        name = f"{node.input[1]}_kn"
        graph.initializer.append(numpy_helper.from_array(weight, name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.name}_matmul_out" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}_MatMul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
    del graph.node[:]
    graph.node.extend(nodes)
    return remove_unused(model)


def _save(model: onnx.ModelProto, target: str | Path) -> Path:
    del model.graph.value_info[:]
    with atomic_path(target) as tmp:
        onnx.save_model(model, str(tmp))
    return Path(target)


def _quiet():
    """ORT's converters log per-node progress; users need none of it (but `--verbose` shows it)."""
    return quiet_libraries(loggers=("onnxruntime",), stdout=True)

