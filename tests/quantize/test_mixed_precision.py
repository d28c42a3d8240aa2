import contextlib
import io
import json
from pathlib import Path

import onnx
import pytest
import torch

import edgecompress as ec
from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN
from edgecompress.techniques.quantize.layer_error import layer_quantization_error
from edgecompress.techniques.quantize.mixed_precision import explicit_float_layers, quantize_within_tolerance


def test_layers_are_kept_float_worst_sqnr_first_until_within_tolerance(digits):
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    worst_first = [e.name for e in layer_quantization_error(model, digits.train_loader)]
    calls = []

    def quantize(weights):
        calls.append(weights)
        return Path(f"attempt{len(calls)}.onnx")

    def score(path):  # recovers fully once two layers are float
        return 90.0 + min(len(calls[-1]), 2) * 5.0

    report = quantize_within_tolerance(model, quantize, score, 100.0, True, digits.train_loader, 0.5, [])
    assert report.kept_float == worst_first[:2]
    assert calls == [(), (f"{worst_first[0]}.weight",), tuple(f"{n}.weight" for n in worst_first[:2])]
    assert report.within_tolerance and report.final_score == 100.0
    assert [a["drop"] for a in report.attempts] == [10.0, 5.0, 0.0]


def test_unreachable_tolerance_is_reported_not_hidden(digits):
    model = DigitsCNN().eval()
    report = quantize_within_tolerance(model, lambda w: Path("x"), lambda p: 0.0, 100.0, True, digits.train_loader, 1.0, [])
    assert not report.within_tolerance and len(report.kept_float) == 4


def test_keep_float_pattern_must_match_a_layer():
    assert explicit_float_layers(DigitsCNN(), ("fc*",)) == ["fc1", "fc2"]
    with pytest.raises(UserError, match="quantize.keep_float: pattern 'head' matches no layer"):
        explicit_float_layers(DigitsCNN(), ("head",))


def test_kept_layer_ships_in_float_and_the_choice_is_reported(trained_cnn, digits, tmp_path):
    with contextlib.redirect_stderr(io.StringIO()):
        ec.compress(trained_cnn, digits, [ec.Quantize(keep_float=("fc2",), tolerance=5.0)], tmp_path / "run")
    graph = onnx.load(str(tmp_path / "run" / "final.onnx")).graph
    types = {t.name: t.data_type for t in graph.initializer}
    assert types["fc2.weight"] == onnx.TensorProto.FLOAT
    assert types["fc1.weight_quantized"] == onnx.TensorProto.INT8 and "fc2.weight_quantized" not in types
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())["final"]["quantization"]
    assert report["kept_float"][0] == "fc2" and report["decided_on"] == "training data"
    assert set(report["layer_sqnr_db"]) == {"conv1", "conv2", "fc1", "fc2"}
