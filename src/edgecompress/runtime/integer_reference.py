"""Exact integer arithmetic for ONNX Runtime's integer nodes, recomputed from the node's own inputs.

ONNX Runtime's int8 kernels are not the same computation on every CPU: on x86 AVX2 without VNNI, the
uint8 x int8 kernels add pairs of products in 16 bits and saturate (FINDINGS sec. 7). To know whether an
artifact computes what it claims, each integer node's output is recomputed here with exact arithmetic and
compared with what the runtime produced from the same inputs.

Written by hand because neither onnx's reference evaluator nor ORT offers the com.microsoft contrib ops
(QGemm) or an exact float64 path; the arithmetic is float64 in torch, which is exact for these integer
sums (|products| <= 2^16, far fewer than 2^37 terms).

Each function returns (reference output, step): the step is what "one quantization step" means for the
output, so a caller can count outputs off by more than one step.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

Inputs = list  # the node's inputs in ONNX order, None for an absent optional input
Attributes = dict

# ops whose arithmetic is an integer matrix product or convolution: the kernels that can saturate
REFERENCES: dict[str, Callable[[Inputs, Attributes], tuple[np.ndarray, float | np.ndarray]]] = {}


def reference(*ops: str):
    def register(fn):
        for op in ops:
            REFERENCES[op] = fn
        return fn

    return register


def _f64(array) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array).astype(np.float64))


def _centered(values, zero_point) -> torch.Tensor:
    """values - zero_point as exact float64; a per-channel zero point applies along the first axis."""
    tensor = _f64(values)
    if zero_point is None:
        return tensor
    zp = _f64(zero_point)
    if zp.dim() == 1 and zp.numel() > 1:
        zp = zp.reshape(-1, *([1] * (tensor.dim() - 1)))
    return tensor - zp


def _requantize(accumulator: torch.Tensor, multiplier: torch.Tensor, zero_point, dtype) -> np.ndarray:
    """round-half-even(acc * multiplier) + zero point, saturated to the output type (ONNX's QLinear rule)."""
    info = np.iinfo(dtype)
    zp = 0.0 if zero_point is None else float(np.asarray(zero_point).reshape(-1)[0])
    values = torch.round(accumulator * multiplier) + zp
    return values.clamp(info.min, info.max).numpy().astype(dtype)


def _conv(x: torch.Tensor, w: torch.Tensor, attrs: Attributes) -> torch.Tensor:
    spatial = w.dim() - 2
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("auto_pad")
    pads = list(attrs.get("pads", [0] * (2 * spatial)))
    strides = list(attrs.get("strides", [1] * spatial))
    dilations = list(attrs.get("dilations", [1] * spatial))
    group = int(attrs.get("group", 1))
    begin, end = pads[:spatial], pads[spatial:]
    if begin != end:  # torch pads symmetrically: pad explicitly (zeros: the centered zero point)
        x = F.pad(x, [p for b, e in zip(reversed(begin), reversed(end)) for p in (b, e)])
        begin = [0] * spatial
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    return conv(x, w, None, strides, begin, dilations, group)


def _channel_column(values, dims: int) -> torch.Tensor:
    """A per-output-channel vector shaped to broadcast over (N, C, spatial...)."""
    tensor = _f64(values).reshape(-1)
    return tensor.reshape(1, -1, *([1] * (dims - 2))) if tensor.numel() > 1 else tensor


@reference("QLinearConv")
def qlinear_conv(inputs: Inputs, attrs: Attributes):
    x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, *rest = inputs + [None] * (9 - len(inputs))
    bias = rest[0] if rest else None
    # padding is with the input's zero point, i.e. zero after centering
    acc = _conv(_centered(x, x_zp), _centered(w, w_zp), attrs)
    if bias is not None:
        acc = acc + _channel_column(bias, acc.dim())
    multiplier = _f64(x_scale) * _channel_column(w_scale, acc.dim()) / _f64(y_scale)
    return _requantize(acc, multiplier, y_zp, np.asarray(y_zp).dtype), 1.0


@reference("ConvInteger")
def conv_integer(inputs: Inputs, attrs: Attributes):
    x, w, x_zp, w_zp = inputs + [None] * (4 - len(inputs))
    acc = _conv(_centered(x, x_zp), _centered(w, w_zp), attrs)
    return acc.numpy().astype(np.int32), 0.0


def _matmul(a, a_zp, b, b_zp) -> torch.Tensor:
    """(a - a_zp) @ (b - b_zp); b's zero point may be per column (its last axis)."""
    left = _f64(a) - (0.0 if a_zp is None else _f64(a_zp))
    right = _f64(b) - (0.0 if b_zp is None else _f64(b_zp))
    return left @ right


@reference("MatMulInteger")
def matmul_integer(inputs: Inputs, attrs: Attributes):
    a, b, a_zp, b_zp = inputs + [None] * (4 - len(inputs))
    return _matmul(a, a_zp, b, b_zp).numpy().astype(np.int32), 0.0


@reference("QLinearMatMul")
def qlinear_matmul(inputs: Inputs, attrs: Attributes):
    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = inputs
    acc = _matmul(a, a_zp, b, b_zp)
    multiplier = _f64(a_scale) * _f64(b_scale) / _f64(y_scale)
    return _requantize(acc, multiplier, y_zp, np.asarray(y_zp).dtype), 1.0


@reference("MatMulIntegerToFloat")
def matmul_integer_to_float(inputs: Inputs, attrs: Attributes):
    a, b, a_scale, b_scale, a_zp, b_zp, bias = inputs + [None] * (7 - len(inputs))
    step = _f64(a_scale) * _f64(b_scale)
    result = _matmul(a, a_zp, b, b_zp) * step
    if bias is not None:
        result = result + _f64(bias)
    return result.numpy(), step.numpy()


@reference("QGemm")
def qgemm(inputs: Inputs, attrs: Attributes):
    """com.microsoft QGemm: Y = alpha * a_scale * b_scale * ((A - a_zp)(B - b_zp) + C), requantized if y_scale."""
    a, a_scale, a_zp, b, b_scale, b_zp, c, y_scale, y_zp = inputs + [None] * (9 - len(inputs))
    left = _f64(a) - _f64(a_zp)
    if attrs.get("transA", 0):
        left = left.T
    right = _f64(b)
    b_zp = _f64(b_zp).reshape(-1)
    if attrs.get("transB", 0):
        right = (right - (b_zp.reshape(-1, 1) if b_zp.numel() > 1 else b_zp)).T
    else:
        right = right - b_zp
    acc = left @ right
    if c is not None:
        acc = acc + _f64(c)
    scale = float(attrs.get("alpha", 1.0)) * _f64(a_scale) * _f64(b_scale).reshape(-1)
    if y_scale is None:
        return (acc * scale).numpy().astype(np.float32), scale.numpy()
    return _requantize(acc, scale / _f64(y_scale), y_zp, np.asarray(y_zp).dtype), 1.0
