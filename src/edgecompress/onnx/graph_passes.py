"""onnx_ir's graph passes on an `onnx.ModelProto`: the graph clean-up every module shares.

Every module that rewrites a graph (quantizers, outlier smoothing, embedding tables, `compact_graph`) ends
with `remove_unused`, so "drop what nothing reads" is written once, by onnx_ir, subgraphs included.
"""

from __future__ import annotations

import onnx
import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass

from edgecompress.core.verbosity import quiet_libraries


def run_ir_passes(model: onnx.ModelProto, *passes: ir.passes.PassBase) -> onnx.ModelProto:
    """`model` after onnx_ir's `passes`, as a new ModelProto; `model` itself is not changed.

    Tensors are copied as they were stored (onnx_ir keeps the TensorProto). onnx_ir's serializer also
    writes a value_info entry for every initializer (its shape and type, which the initializer already
    holds); only the value_info entries `model` had are kept, so the file does not grow.

    >>> cleaned = run_ir_passes(onnx.load("int8.onnx"), RemoveUnusedNodesPass())  # doctest: +SKIP
    """
    annotated = {info.name for info in model.graph.value_info}
    with quiet_libraries(loggers=("onnx_ir",)):  # the passes log each removal, and each tensor they leave, at INFO/WARNING
        ir_model = ir.from_proto(model)
        for graph_pass in passes:
            ir_model = graph_pass(ir_model).model
        result = ir.to_proto(ir_model)
    kept = [info for info in result.graph.value_info if info.name in annotated]
    del result.graph.value_info[:]
    result.graph.value_info.extend(kept)
    return result


def remove_unused(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` without the nodes and initializers no graph output depends on (a new ModelProto).

    The graph's inputs and outputs stay as they are, even when nothing reads an input.

    >>> model = remove_unused(model)  # after replacing nodes, drop the weights they used  # doctest: +SKIP
    """
    return run_ir_passes(model, RemoveUnusedNodesPass())


def fold_weight_transposes(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """`model` with every Transpose of a stored weight replaced by the transposed weight; returns the names
    of the weights folded.

    A decoder whose output layer shares the token table (tied embeddings) exports as Gather(table) and
    MatMul(x, Transpose(table)). Quantizers only touch a MatMul whose weight is stored, so the largest matrix
    of a small language model would stay float; folded, the MatMul and the Gather each get their own copy,
    each quantized in its own format (MatMulNBits, GatherBlockQuantized), as ONNX Runtime GenAI's builder
    stores them. Written by hand: onnx_ir's constant folding leaves a weight that other nodes also read.

    >>> folded, names = fold_weight_transposes(onnx.load("decoder.onnx"))  # doctest: +SKIP
    """
    from onnx import helper, numpy_helper

    result = onnx.ModelProto()
    result.CopyFrom(model)
    weights = {t.name: t for t in result.graph.initializer}
    folded, nodes = [], []
    for node in result.graph.node:
        weight = weights.get(node.input[0]) if node.op_type == "Transpose" and node.input else None
        if weight is None or len(weight.dims) != 2:
            nodes.append(node)
            continue
        perm = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "perm"), [1, 0])
        array = numpy_helper.to_array(weight).transpose(perm)
        result.graph.initializer.append(numpy_helper.from_array(array.copy(), node.output[0]))
        folded.append(weight.name)
    if not folded:
        return result, []
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    return remove_unused(result), folded
