"""Graph clean-up (onnx_ir's passes behind `remove_unused` and `compact_graph`) on small hand-built graphs."""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgecompress.onnx.compact_graph import compact_graph
from edgecompress.onnx.graph_passes import remove_unused

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 4)).astype(np.float32)


def _tensor(array, name):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def _model(nodes, initializers, outputs=("y",), opsets=(("", 17),)):
    graph = helper.make_graph(
        nodes,
        "hand-built",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
        initializer=initializers,
        doc_string="a graph doc string",
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], producer_name="hand")
    model.ir_version = 8
    helper.set_model_props(model, {"source": "a test"})
    return model


def _messy_model():
    """Two names for one weight, a dead branch with its own weight, an unused tensor, an unused opset,
    doc strings, metadata and an attribute spelt at its default."""
    nodes = [
        helper.make_node("MatMul", ["x", "fc1.weight"], ["a"], name="first", doc_string="first matmul"),
        helper.make_node("MatMul", ["a", "fc2.weight"], ["b"], name="second"),
        helper.make_node("Gemm", ["b", "fc1.weight"], ["y"], name="gemm", alpha=1.0, transB=0),
        helper.make_node("Add", ["x", "dead_bias"], ["dead"], name="dead_add"),
    ]
    initializers = [_tensor(W, "fc1.weight"), _tensor(W, "fc2.weight"), _tensor(np.ones(4), "dead_bias"), _tensor(np.zeros(3), "never_read")]
    return _model(nodes, initializers, opsets=(("", 17), ("com.microsoft", 1)))


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def test_compact_graph_stores_a_shared_weight_once_and_drops_what_nothing_reads():
    original = _messy_model()
    compact = compact_graph(_messy_model())
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    assert np.array_equal(_run(compact, x)[0], _run(original, x)[0]), "same outputs, bit for bit"
    graph = compact.graph
    assert [t.name for t in graph.initializer] == ["fc1.weight"], "the copy is deduplicated, dead and unused tensors are gone"
    assert [n.op_type for n in graph.node] == ["MatMul", "MatMul", "Gemm"], "the dead Add is removed"
    assert [n.input[1] for n in graph.node] == ["fc1.weight"] * 3
    assert [a.name for a in graph.node[2].attribute] == [], "alpha 1.0 and transB 0 are what their absence means"
    assert [o.domain for o in compact.opset_import] == [""]
    assert not compact.metadata_props and not compact.producer_name and not graph.doc_string
    assert not any(n.name or n.doc_string for n in graph.node) and not graph.value_info
    assert compact.ByteSize() < original.ByteSize() - 2 * W.nbytes


def test_remove_unused_keeps_the_interface_and_tensors_read_only_inside_a_subgraph():
    """The four hand-written copies this replaced looked only at the top-level nodes: a tensor read only by
    an If branch was dropped and the model no longer loaded."""
    branch = lambda name, tensor: helper.make_graph(  # noqa: E731
        [helper.make_node("Add", ["x", tensor], [name])], name, [], [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)]
    )
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["positive"]),
        helper.make_node("If", ["positive"], ["y"], then_branch=branch("then_out", "plus"), else_branch=branch("else_out", "minus")),
    ]
    initializers = [_tensor(0.0, "zero"), _tensor(np.ones(4), "plus"), _tensor(-np.ones(4), "minus"), _tensor(np.ones(2), "stale")]
    model = _model(nodes, initializers, outputs=("y",))
    model.graph.input.append(helper.make_tensor_value_info("unread", TensorProto.FLOAT, [1]))
    model.graph.value_info.append(helper.make_tensor_value_info("total", TensorProto.FLOAT, []))

    cleaned = remove_unused(model)

    assert [t.name for t in cleaned.graph.initializer] == ["zero", "plus", "minus"]
    assert [i.name for i in cleaned.graph.input] == ["x", "unread"], "callers feed inputs by name: none is removed"
    assert [v.name for v in cleaned.graph.value_info] == ["total"], "no value_info is added for the initializers"
    session = ort.InferenceSession(cleaned.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.full((1, 4), 2.0, dtype=np.float32)
    assert session.run(None, {"x": x, "unread": np.zeros(1, np.float32)})[0].tolist() == [[3.0] * 4]
    assert session.run(None, {"x": -x, "unread": np.zeros(1, np.float32)})[0].tolist() == [[-3.0] * 4]
    assert len(model.graph.initializer) == 4, "the caller's model is left as it was"
