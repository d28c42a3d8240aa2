"""GPTQ rounding for the integer weights ONNX Runtime's quantizers write: int8 (MatMulInteger, dynamic) and
4-bit blocks (MatMulNBits).

ORT's quantizer picks the grid (per-column scales, zero point 0) and rounds to nearest; this keeps its grid
and replaces only the integers with GPTQ's (`gptq.py`), from Hessians of each MatMul's float input measured
on calibration batches. The graph, the scales and the kernels stay exactly as ORT wrote them.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edgecompress.techniques.quantize.channel_ranges import tensor_values
from edgecompress.techniques.quantize.gptq import gptq_round

TOKEN_MASK = "attention_mask"  # transformer feeds: padding positions are not calibration data


def input_hessians(model: onnx.ModelProto, tensor_names: list[str], feeds: Iterable[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """X^T X (float64) of each named float tensor over its last axis, padding tokens left out.

    >>> hessians = input_hessians(model, ["hidden"], calibration_feeds)  # doctest: +SKIP
    """
    hessians: dict[str, torch.Tensor] = {}
    for feed, values in tensor_values(model, tensor_names, feeds):
        mask = np.asarray(feed[TOKEN_MASK]).reshape(-1).astype(bool) if TOKEN_MASK in feed else None
        for name, value in values.items():
            rows = value.reshape(-1, value.shape[-1])
            if mask is not None and rows.shape[0] == mask.size:
                rows = rows[mask]
            x = torch.from_numpy(rows).to(torch.float64)
            hessians[name] = hessians[name] + x.T @ x if name in hessians else x.T @ x
    return hessians


def gptq_matmul_integer_weights(
    quantized: onnx.ModelProto, source: onnx.ModelProto, feeds: Iterable[Mapping[str, np.ndarray]], weight_max: int
) -> list[str]:
    """Re-round, in place, every MatMulInteger weight of `quantized` (ORT's output for `source`) with GPTQ.

    `weight_max` is the grid's largest |integer| (64 for 7-bit weights, 127 for 8-bit).

    Returns the weights re-rounded. A weight is matched to its float original by ORT's naming
    (`<w>_quantized`, `<w>_scale`, `<w>_zero_point`); one ORT did not name that way is left as ORT rounded it.
    """
    floats = {t.name: t for t in source.graph.initializer}
    stored = {t.name: t for t in quantized.graph.initializer}
    producers = {o: n for n in quantized.graph.node for o in n.output}
    plans = []
    for node in quantized.graph.node:
        weight = node.input[1] if node.op_type == "MatMulInteger" else ""
        original = weight.removesuffix("_quantized")
        activation = producers.get(node.input[0])
        if not weight.endswith("_quantized") or original not in floats or f"{original}_scale" not in stored or activation is None:
            continue
        if activation.op_type != "DynamicQuantizeLinear":
            continue
        plans.append((weight, original, activation.input[0]))
    hessians = input_hessians(source, [x for _, _, x in plans], feeds)
    for weight, original, activation in plans:
        integers = stored[weight]
        zero_point = stored.get(f"{original}_zero_point")
        if zero_point is not None and np.any(numpy_helper.to_array(zero_point)):
            continue  # asymmetric weights: not ORT's default, leave them
        float_weight = torch.from_numpy(numpy_helper.to_array(floats[original]).astype(np.float64)).T  # (out, in)
        scale = torch.from_numpy(numpy_helper.to_array(stored[f"{original}_scale"]).astype(np.float64)).reshape(-1)
        scale = scale.expand(float_weight.shape[0]) if scale.numel() == 1 else scale
        rounded = gptq_round(float_weight, hessians[activation], scale, qmax=weight_max)
        integers.CopyFrom(numpy_helper.from_array(rounded.T.contiguous().numpy().astype(np.int8), weight))
    return [weight for weight, _, _ in plans]


def matmul_weights(source: onnx.ModelProto) -> dict[str, tuple[str, np.ndarray]]:
    """Every MatMul with a constant weight, by its output name: (its input tensor's name, the float weight [K, N]).

    Read before ONNX Runtime's 4-bit quantizer rewrites the graph; a MatMulNBits node keeps the output name
    of the MatMul it replaced, which finds its float weight again."""
    floats = {t.name: t for t in source.graph.initializer}
    return {node.output[0]: (node.input[0], numpy_helper.to_array(floats[node.input[1]]))
            for node in source.graph.node if node.op_type == "MatMul" and node.input[1] in floats}


def gptq_matmul_nbits_weights(quantized: onnx.ModelProto, weights: dict[str, tuple[str, np.ndarray]], hessians: dict[str, torch.Tensor]) -> list[str]:
    """Re-round, in place, every 4-bit MatMulNBits weight of `quantized` with GPTQ, keeping ONNX Runtime's
    block scales and zero points. `weights` are the float graph's (`matmul_weights`), `hessians` X^T X of their
    inputs (`input_hessians`).

    The packed weight is [N, blocks, bytes per block], two 4-bit values per byte, low nibble first; a value v
    stands for (v - zero point) x scale, the zero point 8 when the node has none (the MatMulNBits spec).
    Returns the weights re-rounded.
    """
    stored = {t.name: t for t in quantized.graph.initializer}
    done = []
    for node in quantized.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "MatMulNBits" or attrs.get("bits", 4) != 4 or node.output[0] not in weights:
            continue
        if len(node.input) > 4 and node.input[4]:  # g_idx (act-order): another layout, left as ORT wrote it
            continue
        activation, float_weight = weights[node.output[0]]
        if activation not in hessians:
            continue
        n, k, block = attrs["N"], attrs["K"], attrs["block_size"]
        blocks = numpy_helper.to_array(stored[node.input[1]]).shape[1]
        scales = numpy_helper.to_array(stored[node.input[2]]).astype(np.float64).reshape(n, blocks)
        zero = _zero_points(stored, node, n, blocks)
        rounded = gptq_round(
            torch.from_numpy(float_weight.astype(np.float64)).T, hessians[activation],
            torch.from_numpy(np.repeat(scales, block, axis=1)[:, :k]), qmax=15, qmin=0,
            offset=torch.from_numpy(np.repeat(zero, block, axis=1)[:, :k].astype(np.int64)),
        )
        values = np.repeat(zero, block, axis=1)  # the padding of a last, partial block stands for 0
        values[:, :k] = rounded.numpy().astype(np.uint8)
        pairs = values.reshape(n, blocks, block // 2, 2)
        repacked = (pairs[..., 0] | (pairs[..., 1] << 4)).astype(np.uint8)
        stored[node.input[1]].CopyFrom(numpy_helper.from_array(repacked, node.input[1]))
        done.append(node.input[1])
    return done


def _zero_points(stored: dict, node: onnx.NodeProto, n: int, blocks: int) -> np.ndarray:
    """[N, blocks] 4-bit zero points of a MatMulNBits node: packed two per byte, or 8 when it has none."""
    if len(node.input) < 4 or not node.input[3]:
        return np.full((n, blocks), 8, dtype=np.uint8)
    packed = numpy_helper.to_array(stored[node.input[3]]).reshape(n, -1)
    return np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, -1)[:, :blocks].astype(np.uint8)
