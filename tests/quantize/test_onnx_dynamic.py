import os
from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from edgecompress.core.errors import RunFailure, UserError
from edgecompress.core.evaluate import score_onnx
from edgecompress.onnx import export_onnx
from edgecompress.techniques.quantize.onnx_dynamic import quantize_dynamic_int8

MLP_WEIGHTS = 64 * 300 + 300 * 100 + 100 * 10


@pytest.fixture(scope="module")
def mlp_onnx(trained_mlp, digits, tmp_path_factory):
    return export_onnx(trained_mlp, digits.example_input(), tmp_path_factory.mktemp("mlp") / "fp32.onnx")


def int8_weight_count(path) -> int:
    graph = onnx.load(str(path)).graph
    return sum(int(np.prod(t.dims)) for t in graph.initializer if t.data_type == TensorProto.INT8 and len(t.dims) == 2)


def op_counts(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def gemm_names(path) -> list[str]:
    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Gemm"]


def test_dynamic_int8_keeps_accuracy_and_stores_int8_weights(mlp_onnx, digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths must survive the quantizer's private working directory
    assert gemm_names(mlp_onnx) and not op_counts(mlp_onnx)["MatMul"], "the exporter writes nn.Linear as Gemm"
    int8 = quantize_dynamic_int8(mlp_onnx, "int8.onnx")
    assert os.listdir() == ["int8.onnx"], "ORT's temporary files must not be left behind"

    ops = op_counts(int8)
    assert ops["MatMulInteger"] == 3 and ops["DynamicQuantizeLinear"] == 3 and not ops["Gemm"]
    assert int8_weight_count(int8) == MLP_WEIGHTS
    assert (tmp_path / "int8.onnx").stat().st_size * 3 <= mlp_onnx.stat().st_size
    assert abs(score_onnx(int8, digits) - score_onnx(mlp_onnx, digits)) <= 0.5


def weight_scale_sizes(path) -> list[int]:
    """Sizes of the float weight scales: the stored factor each MatMulInteger result is multiplied by."""
    graph = onnx.load(str(path)).graph
    floats = {t.name: t for t in graph.initializer if t.data_type == TensorProto.FLOAT}
    return sorted(int(np.prod(floats[i].dims)) for n in graph.node if n.op_type == "Mul" for i in n.input if i in floats)


def test_weight_scales_are_per_output_channel_by_default(mlp_onnx, tmp_path):
    per_channel = quantize_dynamic_int8(mlp_onnx, tmp_path / "per_channel.onnx")
    per_tensor = quantize_dynamic_int8(mlp_onnx, tmp_path / "per_tensor.onnx", per_channel=False)
    assert weight_scale_sizes(per_channel) == [10, 100, 300]
    assert weight_scale_sizes(per_tensor) == [1, 1, 1]
    assert int8_weight_count(per_tensor) == MLP_WEIGHTS


def test_excluded_gemm_stays_float(mlp_onnx, tmp_path):
    last = gemm_names(mlp_onnx)[-1]  # fc3, 100 x 10
    int8 = quantize_dynamic_int8(mlp_onnx, tmp_path / "int8.onnx", exclude_nodes=(last,))
    assert op_counts(int8)["MatMulInteger"] == 2
    assert int8_weight_count(int8) == MLP_WEIGHTS - 100 * 10


class LinearThenMatMul(nn.Module):
    """A Gemm (the nn.Linear) followed by a plain MatMul with a stored weight."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 32)
        self.projection = nn.Parameter(torch.randn(32, 8))

    def forward(self, x):
        return torch.relu(self.fc(x)) @ self.projection


@pytest.mark.parametrize("op_types, float_matmuls", [(("Gemm",), 1), (("MatMul",), 1), (("MatMul", "Gemm"), 0)])
def test_op_types_select_gemm_and_matmul_separately(tmp_path, op_types, float_matmuls):
    fp32 = export_onnx(LinearThenMatMul(), torch.randn(2, 16), tmp_path / "fp32.onnx")
    assert sorted(op_counts(fp32)) == ["Gemm", "MatMul", "Relu"]
    int8 = quantize_dynamic_int8(fp32, tmp_path / "int8.onnx", op_types=op_types)
    assert op_counts(int8)["MatMulInteger"] == 2 - float_matmuls
    assert op_counts(int8)["MatMul"] == float_matmuls


def test_a_weight_ort_cannot_quantize_is_a_failure_not_a_silent_float_model(tmp_path):
    weight = numpy_helper.from_array(np.ones((8, 4), dtype=np.float32), "w")
    scaled = helper.make_node("Gemm", ["x", "w"], ["y"], name="scaled_gemm", alpha=0.5)  # ORT only rewrites alpha=1
    graph = helper.make_graph(
        [scaled], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "scaled.onnx"))
    with pytest.raises(RunFailure, match="left 1 of 1 .*scaled_gemm"):
        quantize_dynamic_int8(tmp_path / "scaled.onnx", tmp_path / "int8.onnx")
    assert not (tmp_path / "int8.onnx").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"op_types": ("Conv",)}, "op_types: got 'Conv'"),
        ({"op_types": ()}, "op_types: got nothing"),
        ({"op_types": "Gemm"}, "op_types: give a tuple"),
        ({"op_types": ("MatMul",)}, "op_types: no MatMul node .* the model has Gemm"),
        ({"exclude_nodes": ("no_such_node",)}, "exclude_nodes: no node named 'no_such_node'"),
    ],
)
def test_bad_arguments_are_user_errors(mlp_onnx, tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        quantize_dynamic_int8(mlp_onnx, tmp_path / "int8.onnx", **kwargs)


def test_missing_source_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="source: no ONNX file"):
        quantize_dynamic_int8(tmp_path / "missing.onnx", tmp_path / "int8.onnx")


def test_compacted_dynamic_file_gives_bit_identical_outputs(mlp_onnx, digits, tmp_path, monkeypatch):
    import onnxruntime as ort

    from edgecompress.onnx.compact_graph import compact_graph
    from edgecompress.techniques.quantize import onnx_dynamic

    monkeypatch.setattr(onnx_dynamic, "compact_graph", lambda model: model)
    plain = quantize_dynamic_int8(mlp_onnx, tmp_path / "plain.onnx")
    compact = tmp_path / "compact.onnx"
    onnx.save(compact_graph(onnx.load(str(plain))), str(compact))
    inputs = np.concatenate([x.numpy() for x, _ in digits.eval_loader])
    outputs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"input": inputs})[0] for p in (compact, plain)]
    assert np.array_equal(*outputs)
    assert compact.stat().st_size < plain.stat().st_size - 1000
    assert not any(n.name for n in onnx.load(str(compact)).graph.node), "node names are dropped"
