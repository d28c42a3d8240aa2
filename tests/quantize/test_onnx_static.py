import itertools
import os

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgecompress.core.errors import UserError
from edgecompress.core.evaluate import score_onnx, score_torch
from edgecompress.onnx import export_onnx
from edgecompress.techniques.quantize.onnx_static import quantize_static_int8


def test_static_int8_keeps_accuracy_and_stores_int8_weights(trained_cnn, digits, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths must survive the quantizer's private working directory
    export_onnx(trained_cnn, digits.example_input(), "fp32.onnx")
    int8 = quantize_static_int8("fp32.onnx", "int8.onnx", digits.train_loader, max_batches=8)
    assert sorted(os.listdir()) == ["fp32.onnx", "int8.onnx"], "ORT's temporary files must not be left behind"
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"

    weights = {t.name: t for t in onnx.load(str(int8)).graph.initializer}
    int8_weights = [t for n, t in weights.items() if n.endswith("weight_quantized") and t.data_type == onnx.TensorProto.INT8]
    assert sum(int(np.prod(t.dims)) for t in int8_weights) == 32 * 9 + 64 * 32 * 9 + 256 * 128 + 128 * 10
    assert int8.stat().st_size < fp32.stat().st_size / 2.5
    assert abs(score_onnx(int8, digits) - score_torch(trained_cnn, digits)) <= 1.0


def test_calibration_feeds_at_most_the_requested_batches(trained_cnn, digits, tmp_path):
    from edgecompress.techniques.quantize.onnx_static import _LoaderReader

    reader = _LoaderReader("input", digits.train_loader, max_batches=3)
    fed = []
    while (item := reader.get_next()) is not None:
        fed.append(item["input"])
    assert len(fed) == 3 and fed[0].dtype == np.float32 and fed[0].shape[1:] == (1, 8, 8)


FP32_CNN_BYTES = 214_508  # the digits CNN exported by export_onnx (a structural size: same for any weights)


@pytest.fixture(scope="module")
def cnn_fp32(trained_cnn, digits, tmp_path_factory):
    path = export_onnx(trained_cnn, digits.example_input(), tmp_path_factory.mktemp("cnn") / "fp32.onnx")
    return path, score_onnx(path, digits)


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_per_channel_static_int8_is_3_8x_smaller_within_0_3_points(cnn_fp32, digits, tmp_path, method):
    """Issue #5 acceptance: single-file ONNX >= 3.8x smaller than fp32, accuracy within 0.3 points."""
    fp32, fp32_accuracy = cnn_fp32
    int8 = quantize_static_int8(fp32, tmp_path / "int8.onnx", digits.train_loader, method=method)
    assert fp32.stat().st_size == FP32_CNN_BYTES
    assert int8.stat().st_size <= FP32_CNN_BYTES / 3.8  # 56,449 B; ORT's own file is 58,373 B
    assert abs(score_onnx(int8, digits) - fp32_accuracy) <= 0.3


@pytest.mark.parametrize("graph_format", ["qoperator", "qdq"])
def test_compacted_file_gives_bit_identical_outputs(cnn_fp32, digits, tmp_path, monkeypatch, graph_format):
    from edgecompress.onnx.compact_graph import compact_graph
    from edgecompress.techniques.quantize import onnx_static

    monkeypatch.setattr(onnx_static, "compact_graph", lambda model: model)
    plain = quantize_static_int8(cnn_fp32[0], tmp_path / "plain.onnx", digits.train_loader, max_batches=4, graph_format=graph_format)
    compact = tmp_path / "compact.onnx"
    onnx.save(compact_graph(onnx.load(str(plain))), str(compact))
    inputs = np.concatenate([x.numpy() for x, _ in digits.eval_loader])
    assert np.array_equal(run_onnx(compact, inputs), run_onnx(plain, inputs))
    assert compact.stat().st_size < plain.stat().st_size - 1500
    names = {t.name for t in onnx.load(str(compact)).graph.initializer}
    assert {"conv1.weight_quantized", "fc2.weight_quantized"} <= names  # layers stay recognisable


def run_onnx(path, inputs):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def test_mse_calibration_runs_end_to_end(cnn_fp32, digits, tmp_path):
    fp32, fp32_accuracy = cnn_fp32
    batches = list(itertools.islice(digits.train_loader, 16))  # the same calibration data for both
    mse = quantize_static_int8(fp32, tmp_path / "mse.onnx", batches, method="mse")
    minmax = quantize_static_int8(fp32, tmp_path / "minmax.onnx", batches, method="minmax")
    assert abs(score_onnx(mse, digits) - fp32_accuracy) <= 0.3
    scales = lambda path: sorted(numpy_helper.to_array(t).item() for t in onnx.load(str(path)).graph.initializer if t.data_type == onnx.TensorProto.FLOAT and not t.dims)  # noqa: E731
    assert all(a <= b * 1.0001 for a, b in zip(scales(mse), scales(minmax))) and scales(mse) != scales(minmax), "ranges only shrink"


@pytest.mark.parametrize(
    "batches, message",
    [
        ([], "calibration_batches: the calibration data yielded no batches"),
        ([(torch.rand(8, 3, 8, 8), None)], r"calibration_batches: batch 1 has shape 8x3x8x8; the model's input 'input' takes Nx1x8x8"),
        ([(torch.rand(8, 64), None)], "calibration_batches: batch 1 has shape 8x64"),
        ([(torch.randint(0, 16, (8, 1, 8, 8)), None)], "calibration_batches: batch 1 holds int64 values; give float inputs"),
        ([(torch.rand(0, 1, 8, 8), None)], "calibration_batches: batch 1 has shape 0x1x8x8"),
    ],
    ids=["empty", "channels", "rank", "dtype", "no-samples"],
)
def test_bad_calibration_data_is_one_user_error_and_writes_nothing(cnn_fp32, tmp_path, batches, message):
    fp32, _ = cnn_fp32
    with pytest.raises(UserError, match=message):
        quantize_static_int8(fp32, tmp_path / "int8.onnx", batches)
    assert not (tmp_path / "int8.onnx").exists()


def test_unknown_calibration_method_is_a_user_error(cnn_fp32, digits, tmp_path):
    with pytest.raises(UserError, match="calibration: got 'kl'; choose one of minmax, percentile, entropy, mse"):
        quantize_static_int8(cnn_fp32[0], tmp_path / "int8.onnx", digits.train_loader, method="kl")
