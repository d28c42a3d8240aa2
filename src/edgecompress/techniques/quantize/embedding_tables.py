"""Quantize an ONNX model's embedding tables (Gather on a stored matrix) to int8 or int4 blocks.

Word embeddings are half of a small transformer's parameters (all-MiniLM-L6-v2: 11.7M of 22.7M), so a
size goal needs them quantized too; only MatMul weights caps the file at ~0.65x (FINDINGS sec. 6). ONNX
Runtime's `GatherBlockQuantized` kernel reads the rows it needs from a uint8 table (two 4-bit values per
byte for int4) and dequantizes just those, with one scale per block of `block_size` values along a row.
Quantization here is symmetric (ORT's default zero point, 128 or 8), so no zero-point table is stored.
ORT's own dynamic quantizer stores the table int8 with a single scale for the whole table; we keep one
per block of a row, which costs 4 bytes per block and keeps rare tokens' small rows exact.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgecompress.core.errors import UserError
from edgecompress.onnx.graph_passes import remove_unused

MIN_ROWS = 4096  # vocabulary tables; position and token-type tables are small and touch every token


def quantize_embedding_tables(model: onnx.ModelProto, bits: int = 8, block_size: int = 128, min_rows: int = MIN_ROWS) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of `model` whose large Gather tables are int`bits`; returns it and the tables' names.

    `block_size` is the largest block; a row width it does not divide gets the largest power of two that does.

    >>> quantized, tables = quantize_embedding_tables(onnx.load("minilm.onnx"), bits=4, block_size=32)  # doctest: +SKIP
    """
    if bits not in (4, 8):
        raise UserError(f"quantize.embedding_bits: must be 4 or 8, got {bits!r}")
    if block_size < 16 or block_size & (block_size - 1):
        raise UserError(f"quantize.embedding_block_size: must be a power of two >= 16, got {block_size}")
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    tables = {t.name: t for t in graph.initializer}
    done: list[str] = []
    nodes = []
    for node in graph.node:
        table = tables.get(node.input[0]) if node.op_type == "Gather" and node.input else None
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        usable = (
            table is not None and axis == 0 and len(table.dims) == 2 and table.dims[0] >= min_rows
            and table.data_type == onnx.TensorProto.FLOAT and row_block_size(table.dims[1], block_size)
        )
        if not usable:
            nodes.append(node)
            continue
        block = row_block_size(table.dims[1], block_size)
        if table.name not in done:
            data, scales = _quantize_rows(numpy_helper.to_array(table), bits, block)
            graph.initializer.extend([numpy_helper.from_array(data, f"{table.name}__q{bits}"), numpy_helper.from_array(scales, f"{table.name}__scales")])
            done.append(table.name)
        nodes.append(
            helper.make_node(
                "GatherBlockQuantized",
                [f"{table.name}__q{bits}", node.input[1], f"{table.name}__scales"],
                list(node.output),
                name=node.name,
                domain="com.microsoft",
                gather_axis=0,
                quantize_axis=1,
                block_size=block,
                bits=bits,
            )
        )
    if not done:
        return result, []
    del graph.node[:]
    graph.node.extend(nodes)
    result = remove_unused(result)
    if not any(o.domain == "com.microsoft" for o in result.opset_import):
        result.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return result, done


def row_block_size(width: int, largest: int) -> int:
    """The largest power of two <= `largest` that divides a row (ORT needs >= 16), or 0 if none does."""
    block = largest
    while block >= 16 and width % block:
        block //= 2
    return block if block >= 16 else 0


def _quantize_rows(table: np.ndarray, bits: int, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 data, float32 scales [rows, cols / block_size]); symmetric, zero point 2^(bits-1)."""
    if not np.all(np.isfinite(table)):
        raise UserError("quantize: an embedding table has NaN or Inf values; it cannot be quantized")
    rows, cols = table.shape
    blocks = table.reshape(rows, cols // block_size, block_size).astype(np.float64)
    levels = 2 ** (bits - 1) - 1
    scales = np.abs(blocks).max(axis=2) / levels
    scales = np.where(scales > 0, scales, 1.0)  # an all-zero block stays zero without dividing by zero
    q = np.clip(np.rint(blocks / scales[..., None]), -levels, levels).astype(np.int16) + 2 ** (bits - 1)
    q = q.reshape(rows, cols).astype(np.uint8)
    if bits == 4:
        q = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)  # element 2i in the low nibble
    return q, scales.astype(np.float32)
