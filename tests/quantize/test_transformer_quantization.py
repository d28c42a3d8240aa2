"""Graph rewrites for quantizing transformers: outlier smoothing, embedding tables, int4 QAT grids."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgecompress.core.errors import UserError
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.quantize.block_qat import bake_block_qat, matmul_nbits_grid, prepare_block_qat
from edgecompress.techniques.quantize.channel_ranges import channel_absmax
from edgecompress.techniques.quantize.embedding_tables import quantize_embedding_tables
from edgecompress.techniques.quantize.onnx_dynamic import quantize_dynamic_int8
from edgecompress.techniques.quantize.onnx_lowbit import quantize_int4_weights
from edgecompress.techniques.quantize.outlier_smoothing import smooth_outlier_channels, weight_matmul_inputs


def _matmul_model(weight: np.ndarray) -> onnx.ModelProto:
    k = weight.shape[0]
    node = helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[numpy_helper.from_array(weight, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return make_session(model.SerializeToString()).run(None, {"x": x})[0]


@pytest.fixture
def outlier_data():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(64, 32)).astype(np.float32) / 8
    x = rng.normal(size=(256, 64)).astype(np.float32)
    x[:, [3, 40]] *= 30.0  # two channels 30x larger than the rest, in every row, as in BERT
    return weight, x


def test_channel_ranges_are_per_channel_absolute_maxima(outlier_data):
    weight, x = outlier_data
    model = _matmul_model(weight)
    ranges = channel_absmax(model, weight_matmul_inputs(model), [{"x": x[:128]}, {"x": x[128:]}])
    np.testing.assert_allclose(ranges["x"], np.abs(x).max(axis=0))


def test_smoothing_keeps_the_float_function_and_picks_the_outliers(outlier_data):
    weight, x = outlier_data
    model = _matmul_model(weight)
    result = smooth_outlier_channels(model, channel_absmax(model, ["x"], [{"x": x}]), channels=2)
    assert result.outlier_channels == {"x": [3, 40]}
    np.testing.assert_allclose(_run(result.model, x), x @ weight, rtol=1e-4, atol=1e-4)


def test_smoothing_cuts_dynamic_int8_error(outlier_data, tmp_path):
    weight, x = outlier_data
    model = _matmul_model(weight)
    smoothed = smooth_outlier_channels(model, channel_absmax(model, ["x"], [{"x": x}]), channels=2).model
    errors = []
    for name, candidate in (("plain", model), ("smoothed", smoothed)):
        onnx.save(candidate, tmp_path / f"{name}.onnx")
        # 8-bit weights: their rounding error is then small beside the activations' that smoothing cuts
        quantize_dynamic_int8(tmp_path / f"{name}.onnx", tmp_path / f"{name}.int8.onnx", op_types=("MatMul",), weight_bits=8)
        out = make_session(tmp_path / f"{name}.int8.onnx").run(None, {"x": x})[0]
        errors.append(np.abs(out - x @ weight).mean())
    assert errors[1] < errors[0] / 3


def test_smoothing_refuses_nan_ranges_and_bad_counts(outlier_data):
    weight, _ = outlier_data
    model = _matmul_model(weight)
    with pytest.raises(UserError, match="NaN or Inf"):
        smooth_outlier_channels(model, {"x": np.full(64, np.nan, dtype=np.float32)})
    with pytest.raises(UserError, match="outlier_channels"):
        smooth_outlier_channels(model, {"x": np.ones(64, dtype=np.float32)}, channels=64)


def _gather_model(table: np.ndarray) -> onnx.ModelProto:
    node = helper.make_node("Gather", ["T", "ids"], ["y"], name="g", axis=0)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[numpy_helper.from_array(table, "T")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


@pytest.mark.parametrize("bits,block,bytes_per_value", [(8, 128, 1.0), (4, 32, 0.5)])
def test_embedding_table_rows_dequantize_within_half_a_step(bits, block, bytes_per_value):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(5000, 128)).astype(np.float32)
    table[7] = 0.0  # an all-zero row must stay zero (no division by zero)
    quantized, names = quantize_embedding_tables(_gather_model(table), bits=bits, block_size=block)
    assert names == ["T"]
    data = next(t for t in quantized.graph.initializer if t.name.endswith(f"__q{bits}"))
    assert numpy_helper.to_array(data).nbytes == table.size * bytes_per_value
    ids = np.array([0, 7, 4999, 1234])
    got = make_session(quantized.SerializeToString()).run(None, {"ids": ids})[0]
    blocks = table[ids].reshape(len(ids), -1, block)
    half_step = (np.abs(blocks).max(axis=2, keepdims=True) / (2 ** (bits - 1) - 1) / 2)
    assert np.all(np.abs(got.reshape(blocks.shape) - blocks) <= half_step + 1e-6)
    assert np.all(got[1] == 0.0)


def test_small_tables_are_left_in_float():
    table = np.ones((512, 64), dtype=np.float32)  # position embeddings: touched by every token
    _, names = quantize_embedding_tables(_gather_model(table))
    assert names == []


def test_int4_qat_grid_is_exactly_what_ort_stores(tmp_path):
    """Weights baked on the grid survive ORT's MatMulNBits quantizer unchanged."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 16, bias=False)
    prepare_block_qat(layer, block_size=32)
    bake_block_qat(layer)
    weight = layer.weight.detach().numpy().T.copy()  # [in, out] as a MatMul initializer
    onnx.save(_matmul_model(weight), tmp_path / "baked.onnx")
    quantize_int4_weights(tmp_path / "baked.onnx", tmp_path / "int4.onnx", block_size=32, accuracy_level=0)
    dequantized = make_session(tmp_path / "int4.onnx").run(None, {"x": np.eye(64, dtype=np.float32)})[0]
    np.testing.assert_array_equal(dequantized, weight)


def test_int4_grid_keeps_each_blocks_largest_value_and_16_levels():
    weight = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    grid = matmul_nbits_grid(weight, 32)
    for row, original in zip(grid.reshape(-1, 32), weight.reshape(-1, 32)):
        assert row.unique().numel() <= 16
        assert original.abs().max() in row.abs()


def test_block_qat_trains_through_the_grid():
    layer = torch.nn.Linear(32, 4)
    prepare_block_qat(layer, block_size=32)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(torch.randn(8, 32)).pow(2).sum().backward()
    optimizer.step()  # gradients reach the float weights through the straight-through estimator
    assert layer.parametrizations.weight.original.grad is not None
    assert layer.parametrizations.weight.original.grad.abs().sum() > 0
