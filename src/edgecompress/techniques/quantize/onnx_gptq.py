"""GPTQ rounding for the int8 weights of an ONNX Runtime dynamically quantized model (MatMulInteger).

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
