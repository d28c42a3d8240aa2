import contextlib
import io
import json

import onnx
import pytest
import torch
from pydantic import ValidationError

import edgecompress as ec
from edgecompress.core.models import DigitsMLP
from edgecompress.onnx import export_onnx
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.quantize.onnx_lowbit import gemm_to_matmul


def test_gemm_rewrite_keeps_outputs_and_leaves_no_gemm(tmp_path):
    torch.manual_seed(0)
    model = DigitsMLP().eval()
    path = export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    rewritten = gemm_to_matmul(onnx.load(str(path)))
    assert "Gemm" not in {n.op_type for n in rewritten.graph.node}
    onnx.save_model(rewritten, str(tmp_path / "r.onnx"))
    x = torch.rand(4, 1, 8, 8).numpy()
    a = make_session(path).run(None, {"input": x})[0]
    b = make_session(tmp_path / "r.onnx").run(None, {"input": x})[0]
    assert abs(a - b).max() < 1e-5


@pytest.mark.parametrize("mode, max_ratio, max_drop", [("fp16", 0.51, 0.3), ("int4", 0.20, 1.5)])
def test_lower_widths_shrink_the_file_and_keep_accuracy(trained_mlp, digits, tmp_path, mode, max_ratio, max_drop):
    with contextlib.redirect_stderr(io.StringIO()):
        result = ec.compress(trained_mlp, digits, [ec.Quantize(mode=mode)], tmp_path / "run")
    assert result.final.artifact_bytes <= max_ratio * result.baseline.artifact_bytes
    assert result.final.score >= result.baseline.score - max_drop
    graph = onnx.load(str(tmp_path / "run" / "final.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert ("MatMulNBits" in ops) if mode == "int4" else any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["final"]["config"]["mode"] == mode


def test_mode_specific_fields_are_refused_elsewhere():
    with pytest.raises(ValidationError, match="block_size applies to mode int4 only, not static"):
        ec.Quantize(block_size=64)
    with pytest.raises(ValidationError, match="tolerance applies to mode static and dynamic only, not fp16"):
        ec.Quantize(mode="fp16", tolerance=0.5)
    assert ec.Quantize(mode="int4", block_size=64).block_size == 64


def _matmul_output_error(path, x, reference) -> float:
    return float(((make_session(path).run(None, {"input": x})[0] - reference) ** 2).mean())


def test_gptq_int4_keeps_the_grid_and_errs_less_than_rounding_to_nearest(trained_mlp, digits, tmp_path):
    import numpy as np
    from onnx import numpy_helper

    from edgecompress.techniques.quantize.onnx_lowbit import quantize_int4_weights

    path = export_onnx(trained_mlp, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    inputs = torch.cat([x for x, _ in digits.train_loader])[:512].numpy()
    feeds = [{"input": inputs[i : i + 64]} for i in range(0, 512, 64)]
    reference = make_session(path).run(None, {"input": inputs})[0]
    nearest = quantize_int4_weights(path, tmp_path / "rtn.onnx", block_size=16)
    gptq = quantize_int4_weights(path, tmp_path / "gptq.onnx", block_size=16, gptq_calibration=feeds)
    # output error 0.0032 against 0.0165 here
    assert _matmul_output_error(gptq, inputs, reference) < 0.5 * _matmul_output_error(nearest, inputs, reference)
    rtn_tensors = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(nearest)).graph.initializer}
    gptq_tensors = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(gptq)).graph.initializer}
    packed = [name for name in rtn_tensors if name.endswith("_Q4")]
    assert packed and rtn_tensors.keys() == gptq_tensors.keys()
    for name, value in rtn_tensors.items():  # same scales, same layout: only the 4-bit integers differ
        if name not in packed:
            np.testing.assert_array_equal(value, gptq_tensors[name])
    assert any((rtn_tensors[name] != gptq_tensors[name]).any() for name in packed)
