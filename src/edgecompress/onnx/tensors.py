"""Every TensorProto of an ONNX model, in the fixed order the packed format numbers them (docs/format.md,
section 3); with `everything`, also the sparse and training-graph tensors that format never strips.

>>> sum(1 for _ in walk_tensors(onnx.load("final.onnx")))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Iterator

import onnx


def walk_tensors(model: onnx.ModelProto, everything: bool = False) -> Iterator[onnx.TensorProto]:
    yield from _graph_tensors(model.graph, everything)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node, everything)
    if everything:
        for info in model.training_info:
            yield from _graph_tensors(info.initialization, everything)
            yield from _graph_tensors(info.algorithm, everything)


def _graph_tensors(graph: onnx.GraphProto, everything: bool) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    if everything:
        yield from _sparse_parts(graph.sparse_initializer)
    for node in graph.node:
        yield from _node_tensors(node, everything)


def _node_tensors(node: onnx.NodeProto, everything: bool) -> Iterator[onnx.TensorProto]:
    for attr in node.attribute:
        if attr.HasField("t"):
            yield attr.t
        yield from attr.tensors
        if everything:
            yield from _sparse_parts(([attr.sparse_tensor] if attr.HasField("sparse_tensor") else []) + list(attr.sparse_tensors))
        if attr.HasField("g"):
            yield from _graph_tensors(attr.g, everything)
        for graph in attr.graphs:
            yield from _graph_tensors(graph, everything)


def _sparse_parts(sparse_tensors) -> Iterator[onnx.TensorProto]:
    for sparse in sparse_tensors:
        yield sparse.values
        yield sparse.indices
