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
