"""int8 for recurrent layers (issue 18): the GRU's weights really int8 in the file, an LSTM on ORT's
DynamicQuantizeLSTM, and a line naming every layer that still computes in float, with the reason."""

import json

import numpy as np
import onnx
import torch
from torch import nn

import edgecompress as ec
from edgecompress.core.evaluate import score_onnx
from edgecompress.onnx import export_onnx
from edgecompress.reporting.summary import left_as_is_lines
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.quantize.onnx_dynamic import quantize_dynamic_int8


class Rows(nn.Module):
    def __init__(self, kind=nn.GRU):
        super().__init__()
        self.rnn, self.head = kind(8, 64, batch_first=True), nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.rnn(x.reshape(x.shape[0], 8, 8))
        return self.head(out[:, -1])


def _stored(path):
    return {t.name: (t.data_type, tuple(t.dims)) for t in onnx.load(str(path)).graph.initializer}


def test_gru_channel_pruned_and_int8_is_smaller_in_the_file_and_scored_as_independent_code_scores_it(digits, tmp_path):
    torch.manual_seed(0)
    result = ec.compress(Rows(), digits, [ec.Prune(amount=0.5), ec.Quantize()], tmp_path / "run")
    final = tmp_path / "run" / "final.onnx"
    stored = _stored(final)
    assert stored["rnn.weight_hh_l0_onnx_int8"] == (onnx.TensorProto.INT8, (96, 32)), "3 gates x 32 units, 1 byte each"
    assert stored["rnn.weight_ih_l0_onnx_int8"] == (onnx.TensorProto.INT8, (96, 8))
    assert result.baseline.artifact_bytes / result.final.artifact_bytes >= 3.0
    x, y = next(iter(torch.utils.data.DataLoader(digits.eval_loader.dataset, batch_size=10_000)))
    predicted = make_session(final).run(None, {"input": x.numpy()})[0].argmax(1)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 100 * float(np.mean(predicted == y.numpy())) == metrics["stages"][-1]["score"] == result.final.score
    left = metrics["stages"][-1]["left_float"]
    assert left == [{"layer": "rnn", "op": "GRU", "weights": "int8 per row, dequantized to float",
                     "why": "ONNX Runtime has no int8 GRU kernel: the file stores its weights as int8, it computes in float"}]
    assert left_as_is_lines(result) == [
        "stage 2 (quantize): rnn (GRU) computes in float, weights int8 per row, dequantized to float: ONNX Runtime has no "
        "int8 GRU kernel: the file stores its weights as int8, it computes in float"
    ]
    assert "rnn (GRU) computes in float" in (tmp_path / "run" / "report.html").read_text()


def test_lstm_runs_on_ort_integer_lstm_with_no_layer_left_in_float(digits, tmp_path):
    torch.manual_seed(0)
    model = Rows(nn.LSTM).eval()
    fp32 = export_onnx(model, digits.example_input(), tmp_path / "fp32.onnx")
    int8 = quantize_dynamic_int8(fp32, tmp_path / "int8.onnx")
    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    stored = _stored(int8)
    assert stored["rnn.weight_hh_l0_onnx_quantized"][0] == onnx.TensorProto.INT8
    assert fp32.stat().st_size / int8.stat().st_size >= 2.5
    assert abs(score_onnx(int8, digits) - score_onnx(fp32, digits)) <= 1.0
