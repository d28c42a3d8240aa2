"""GRU and LSTM nodes with their weights stored once, in ONNX's layout, under their torch layer's name.

torch.onnx writes each nn.GRU/nn.LSTM layer as one GRU/LSTM node whose W, R and B are either stored under an
anonymous name (`val_34`; small layers, which the exporter folds) or computed at every call by Slice/Concat
nodes from the torch weights (torch orders the gates r,z,n / i,f,g,o, ONNX z,r,h / i,o,f,c). Folding those
chains once makes the file no larger and the gate reordering free at run time (GRU(8, 256), batch 256, one
thread: 10.0 -> 8.7 ms on this machine), and naming the stored tensors after the layer
(`gru.weight_ih_l0_onnx`, `gru.weight_hh_l0_onnx`, `gru.bias_l0_onnx`) lets quantizers and reports say which
layer a node is: `compact_graph` keeps names holding ".weight". (nn.RNN exports unrolled into MatMul nodes,
which need neither.)

>>> proto = fold_recurrent_weights(proto, recurrent_layer_names(model))  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from torch import nn

from edgecompress.onnx.graph_passes import remove_unused

RECURRENT_OPS = ("GRU", "LSTM", "RNN")
FOLDED_INPUTS = {1: "weight_ih", 2: "weight_hh", 3: "bias"}  # W, R, B


def recurrent_layer_names(model: nn.Module) -> list[tuple[str, str]]:
    """(ONNX op, torch name `gru.l0`) for every layer of every nn.GRU/nn.LSTM, in the order torch.onnx writes them."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.GRU, nn.LSTM)):
            out += [(type(module).__name__, f"{name}.l{k}") for k in range(module.num_layers)]
    return out


def fold_recurrent_weights(model: onnx.ModelProto, layers: list[tuple[str, str]] | None = None) -> onnx.ModelProto:
    """`model` (a new ModelProto) with each recurrent node's W, R and B stored, computed once where they
    depend on stored tensors alone. With `layers` (`recurrent_layer_names`, matching the graph's recurrent
    nodes one to one and op for op), the stored tensors are named after the torch layer; a tensor another
    node also reads is left as it is."""
    model = _copied(model)
    graph = model.graph
    nodes = [node for node in graph.node if node.op_type in RECURRENT_OPS]
    if not nodes:
        return model
    if layers is None or [op for op, _ in layers] != [node.op_type for node in nodes]:
        layers = [(node.op_type, None) for node in nodes]
    producer = {out: node for node in graph.node for out in node.output}
    initializers = {t.name: t for t in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for value in node.input:
            readers[value] = readers.get(value, 0) + 1
    changed = False
    for node, (_, layer) in zip(nodes, layers):
        for index, kind in FOLDED_INPUTS.items():
            name = node.input[index] if len(node.input) > index else ""
            if not name or readers.get(name, 0) > 1:
                continue
            new_name = _stored_name(layer, kind) if layer else (None if name in initializers else f"{name}_folded")
            if new_name is None or new_name == name:
                continue
            if name in initializers:
                initializers[name].name = new_name
            else:
                chain = _constant_chain(name, producer, initializers)
                if chain is None:
                    continue
                graph.initializer.append(numpy_helper.from_array(_evaluate(chain, name, initializers), new_name))
            node.input[index] = new_name
            changed = True
    return remove_unused(model) if changed else model


def _stored_name(layer: str, kind: str) -> str:
    """`gru.l0`, `weight_ih` -> `gru.weight_ih_l0_onnx` (the torch weight's name, in ONNX's gate order)."""
    module, _, index = layer.rpartition(".")
    return f"{module}.{kind}_{index}_onnx"


def _copied(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _constant_chain(name: str, producer: dict, initializers: dict) -> list[onnx.NodeProto] | None:
    """The nodes computing `name` from stored tensors alone, in graph order; None if a graph input reaches it."""
    chain, seen, stack = [], set(), [name]
    while stack:
        value = stack.pop()
        if value in seen or value in initializers or not value:
            continue
        seen.add(value)
        node = producer.get(value)
        if node is None or node.op_type in RECURRENT_OPS or any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
            return None  # a graph input, or a node this evaluation should not run
        chain.append(node)
        stack.extend(node.input)
    order = {id(node): i for i, node in enumerate(producer.values())}
    return sorted({id(n): n for n in chain}.values(), key=lambda n: order[id(n)])


def _evaluate(chain: list[onnx.NodeProto], name: str, initializers: dict) -> np.ndarray:
    needed = {value for node in chain for value in node.input if value in initializers}
    graph = helper.make_graph(
        chain, "fold", [], [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)],
        [initializers[value] for value in sorted(needed)],
    )
    evaluator = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    return np.asarray(evaluator.run(None, {})[0])
