"""Make a quantized ONNX file smaller without changing a single output bit.

On the digits CNN the int8 weights are 53,002 B of a 58,373 B file; the rest is quantization bookkeeping
and graph text: a zero point per output channel that is always 0, the same scalar zero point stored once
per tensor, names like `conv2d_1_zero_point` spelt out at every use, node names, opset imports of domains
no node uses, and the quantizer's metadata. `compact_graph` removes exactly that:

- an all-zero per-channel weight zero point becomes one shared scalar 0 where the operator's spec allows a
  scalar (QLinearConv, ConvInteger, MatMulInteger). QDQ graphs keep their DequantizeLinear zero
  points: ONNX Runtime matches Q/DQ pairs by them when it fuses them into integer kernels;
- identical constant tensors are stored once;
- bookkeeping tensors and intermediate values get the shortest free names (`0`, `a`, `Z`, `a0`). Names of tensors that hold
  a layer's weights (`fc1.weight_quantized`) stay, so each node still says which layer it is;
  graph inputs and outputs keep theirs (callers feed them by name);
- attributes set to the value their absence means (strides 1, pads 0, alpha 1.0, ...) are dropped, and a
  convolution's kernel_shape when it equals its weight's (the spec infers it from the weight), and so are
  node names, doc strings, value_info, model metadata and unused opset imports.

Shared constants, unused tensors and nodes, unused opset imports and doc strings are onnx_ir's passes
(`graph_passes.py`). The rest is hand-written because no pass does it: onnx_ir's only attribute pass adds
defaults (the opposite direction), its naming pass gives names to unnamed values but never shortens them, its
metadata pass leaves the model's own metadata and producer, and nothing in onnx, onnx_ir or onnxruntime
turns a per-channel zero point into a scalar (onnx's optimizer and ORT's graph optimizations fuse and fold,
which can change numerics; here only storage changes). Tests check that ORT's outputs are bit-identical
before and after.
"""

from __future__ import annotations

import itertools
import string
from typing import Iterator

import onnx
from onnx import helper, numpy_helper
from onnx_ir.passes.common import (
    ClearMetadataAndDocStringPass,
    DeduplicateHashedInitializersPass,
    RemoveUnusedNodesPass,
    RemoveUnusedOpsetsPass,
)

from edgecompress.onnx.graph_passes import run_ir_passes

# op type -> input index of the weight zero point that may be a scalar instead of one value per channel.
# Not QGemm: ORT's kernel requires its weight zero point and scale to have the same shape.
SCALAR_ZERO_POINT_INPUTS = {"QLinearConv": 5, "ConvInteger": 3, "MatMulInteger": 3}
NAME_CHARACTERS = string.digits + string.ascii_letters
QUANTIZATION_SUFFIXES = ("_scale", "_zero_point")  # ORT's names for a weight's scales: bookkeeping
# Attribute values the ONNX / com.microsoft operator docs define as what an absent attribute means; a list
# attribute is default when every entry is (e.g. strides 1 "along each spatial axis"). onnx.defs records
# only some of these (not per-axis lists, not com.microsoft ops), hence the table.
_WINDOW = {"auto_pad": b"NOTSET", "group": 1, "dilations": 1, "strides": 1, "pads": 0, "ceil_mode": 0, "storage_order": 0}
_GEMM = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
CONV_WEIGHT_INPUTS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}  # kernel_shape: "inferred from W" if absent
DOCUMENTED_DEFAULTS = {
    **dict.fromkeys(("Conv", "QLinearConv", "ConvInteger", "MaxPool", "AveragePool"), _WINDOW),
    **dict.fromkeys(("Gemm", "QGemm"), _GEMM),
}


def compact_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` stored more compactly, in place, and returned; it computes exactly the same outputs.

    Models with subgraphs (If, Loop, Scan) keep their names and zero points (the hand-written steps do not
    follow values into subgraphs); onnx_ir's passes do, so those models still lose what is unused or shared.

    >>> compact = compact_graph(onnx.load("int8.onnx"))  # doctest: +SKIP
    """
    _drop_metadata(model)
    _drop_default_attributes(model.graph)
    names_too = not any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in model.graph.node for attr in n.attribute)
    if names_too:
        _drop_inferable_kernel_shapes(model.graph)
        _scalar_zero_points(model.graph)
    # Every size of tensor is deduplicated (the plain pass stops at 1024 elements); hashing keeps memory flat.
    passes = (ClearMetadataAndDocStringPass(), DeduplicateHashedInitializersPass(), RemoveUnusedNodesPass(), RemoveUnusedOpsetsPass())
    compact = run_ir_passes(model, *passes)
    if names_too:
        _short_names(compact.graph)
    model.CopyFrom(compact)
    return model


def _drop_metadata(model: onnx.ModelProto) -> None:
    """The model's own metadata and name fields, and value_info (intermediate shapes: not needed to run)."""
    del model.metadata_props[:]
    model.doc_string = model.producer_name = model.producer_version = ""
    model.graph.name = "g"
    del model.graph.value_info[:]


def _drop_default_attributes(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        defaults = DOCUMENTED_DEFAULTS.get(node.op_type, {})
        kept = [a for a in node.attribute if not (a.name in defaults and _all_equal(helper.get_attribute_value(a), defaults[a.name]))]
        del node.attribute[:]
        node.attribute.extend(kept)


def _all_equal(value, default) -> bool:
    return all(v == default for v in value) if isinstance(value, list) else value == default


def _drop_inferable_kernel_shapes(graph: onnx.GraphProto) -> None:
    dims = {t.name: list(t.dims) for t in graph.initializer}
    for node in graph.node:
        index = CONV_WEIGHT_INPUTS.get(node.op_type)
        weight = dims.get(node.input[index]) if index is not None else None
        kept = [a for a in node.attribute if not (weight and a.name == "kernel_shape" and list(a.ints) == weight[2:])]
        del node.attribute[:]
        node.attribute.extend(kept)


def _scalar_zero_points(graph: onnx.GraphProto) -> None:
    initializers = {t.name: t for t in graph.initializer}
    zeros: dict[int, str] = {}  # data type -> name of the shared scalar 0
    for node in graph.node:
        index = SCALAR_ZERO_POINT_INPUTS.get(node.op_type)
        tensor = initializers.get(node.input[index]) if index is not None and index < len(node.input) else None
        if tensor is None or numpy_helper.to_array(tensor).any():
            continue
        if tensor.data_type not in zeros:
            zeros[tensor.data_type] = f"zero_point_{tensor.data_type}"
            scalar = numpy_helper.from_array(numpy_helper.to_array(tensor).reshape(-1)[:1].reshape(()), zeros[tensor.data_type])
            graph.initializer.append(scalar)
        node.input[index] = zeros[tensor.data_type]  # the per-channel tensors it replaces: removed as unused


def _short_names(graph: onnx.GraphProto) -> None:
    """The shortest free names for bookkeeping tensors and intermediate values, in graph order."""
    keep = _interface(graph) | {t.name for t in graph.initializer if _names_a_layer(t.name)}
    names = _shortest_names(keep)
    new: dict[str, str] = {}
    for tensor in graph.initializer:
        if tensor.name not in keep:
            new[tensor.name] = next(names)
    for node in graph.node:
        node.name = ""
        for output in node.output:
            if output and output not in keep:
                new[output] = next(names)
    for tensor in graph.initializer:
        tensor.name = new.get(tensor.name, tensor.name)
    _rename_uses(graph, new)


def _shortest_names(taken: set[str]) -> Iterator[str]:
    """"0".."9", "a".."z", "A".."Z", then two characters, ...; skipping names already in use."""
    for length in itertools.count(1):
        for letters in itertools.product(NAME_CHARACTERS, repeat=length):
            name = "".join(letters)
            if name not in taken:
                yield name


def _interface(graph: onnx.GraphProto) -> set[str]:
    return {v.name for v in [*graph.input, *graph.output]}


def _names_a_layer(name: str) -> bool:
    """`fc1.weight_quantized`, `fc2.weight`: a layer's weight, whose name says which layer a node is."""
    return ".weight" in name and not name.endswith(QUANTIZATION_SUFFIXES)


def _rename_uses(graph: onnx.GraphProto, new: dict[str, str]) -> None:
    for node in graph.node:
        node.input[:] = [new.get(name, name) for name in node.input]
        node.output[:] = [new.get(name, name) for name in node.output]
