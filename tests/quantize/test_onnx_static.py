import os

import numpy as np
import onnx

from edgecompress.evaluate import score_onnx, score_torch
from edgecompress.export import export_onnx
from edgecompress.quantize.onnx_static import quantize_static_int8


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
    from edgecompress.quantize.onnx_static import _LoaderReader

    reader = _LoaderReader("input", digits.train_loader, max_batches=3)
    fed = []
    while (item := reader.get_next()) is not None:
        fed.append(item["input"])
    assert len(fed) == 3 and fed[0].dtype == np.float32 and fed[0].shape[1:] == (1, 8, 8)
