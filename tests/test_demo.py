"""The spine's acceptance: `edgecompress demo` writes honest, consistent outputs; issue 6's size goals hold."""

from __future__ import annotations

import os
import re

import numpy as np
import onnxruntime as ort

from edgecompress.core.tasks.digits import digits_split

ENTRY_KEYS = {"score", "artifact", "artifact_bytes", "params", "nonzero_params", "macs", "latency_ms"}


def _onnx_accuracy(path) -> float:
    _, _, x_test, y_test = digits_split()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x_test.numpy()})[0]
    return 100.0 * float(np.mean(logits.argmax(axis=1) == y_test.numpy()))


def test_demo_writes_every_output(demo_run):
    result, _ = demo_run
    out = result.out_dir
    for name in ("baseline.onnx", "final.onnx", "metrics.json", "report.html", "stages.png", "layers.png", "weights.png"):
        assert (out / name).is_file(), name
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_metrics_json_has_the_documented_schema(demo_run):
    _, metrics = demo_run
    assert metrics["task"] == "digits"
    assert metrics["metric"] == {"name": "accuracy", "higher_is_better": True, "unit": "%"}
    assert [s["name"] for s in metrics["stages"]] == ["prune", "finetune", "qat", "quantize"]
    for entry in [metrics["baseline"], metrics["final"], *metrics["stages"]]:
        assert ENTRY_KEYS <= set(entry)
        assert set(entry["latency_ms"]) == {"batch_1", "batch_256"}
        assert all(v > 0 for v in entry["latency_ms"].values())
    assert metrics["final"] == metrics["stages"][-1]


def test_every_artifact_bytes_is_the_file_size(demo_run):
    result, metrics = demo_run
    for entry in [metrics["baseline"], *metrics["stages"]]:
        assert entry["artifact_bytes"] == os.path.getsize(result.out_dir / entry["artifact"])


def test_final_score_is_the_onnx_runtime_accuracy_of_the_final_file(demo_run):
    result, metrics = demo_run
    assert _onnx_accuracy(result.out_dir / metrics["final"]["artifact"]) == metrics["final"]["score"]
    assert _onnx_accuracy(result.out_dir / "baseline.onnx") == metrics["baseline"]["score"]


def test_baseline_reaches_98_percent_and_final_stays_within_half_a_point(demo_run):
    _, metrics = demo_run
    assert metrics["baseline"]["params"] == 53_002
    assert metrics["baseline"]["score"] >= 98.0
    assert metrics["final"]["score"] >= metrics["baseline"]["score"] - 0.5  # seed 0: 98.33 -> 98.61


def test_final_onnx_is_at_least_8x_smaller_with_fewer_macs(demo_run):
    _, metrics = demo_run
    base, final = metrics["baseline"], metrics["final"]
    assert base["artifact_bytes"] / final["artifact_bytes"] >= 8  # seed 0: 13.7x
    assert metrics["summary"]["size_ratio"] == base["artifact_bytes"] / final["artifact_bytes"]
    # Half the channels removed: conv2 work drops 4x (both its inputs and outputs halve).
    assert final["macs"] < base["macs"] / 3
    assert final["params"] < base["params"] / 3


def test_quantized_final_stores_int8_weights(demo_run):
    import onnx

    result, _ = demo_run
    model = onnx.load(str(result.out_dir / "final.onnx"))
    int8_weights = sum(
        int(np.prod(t.dims))
        for t in model.graph.initializer
        if t.name.endswith("weight_quantized") and t.data_type == onnx.TensorProto.INT8
    )
    assert int8_weights == 16 * 9 + 32 * 16 * 9 + 128 * 64 + 64 * 10  # every pruned weight, as int8


def test_ternary_weights_survive_int8_as_three_values_and_the_first_and_last_layers_stay_int8(demo_run):
    import onnx
    from onnx import numpy_helper

    result, _ = demo_run
    model = onnx.load(str(result.out_dir / "final.onnx"))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith("weight_quantized")}
    assert len(weights) == 4
    for name, w in weights.items():
        if name.startswith(("conv1", "fc2")):
            assert len(np.unique(w)) > 3 and np.abs(w).max() == 64
        else:
            # the ternary scale becomes the int8 scale: +-1 -> +-64, exact on every CPU class (runtime/targets.py)
            assert set(np.unique(w)) == {-64, 0, 64}


def test_report_is_self_contained_and_shows_the_numbers(demo_run):
    result, metrics = demo_run
    page = (result.out_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert not re.search(r'src="(?!data:)', page), "report must not reference external files"
    assert f"{metrics['final']['score']:.2f}%" in page
    for png in ("stages.png", "layers.png", "weights.png"):
        assert (result.out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_packed_final_unpacks_to_the_evaluated_file_and_is_40x_smaller_than_the_baseline(demo_run, tmp_path):
    from edgecompress.delivery import unpack

    result, metrics = demo_run
    final = metrics["final"]
    packed = result.out_dir / final["storage"]
    assert final["storage_bytes"] == packed.stat().st_size < final["artifact_bytes"]
    assert unpack(packed) == (result.out_dir / final["artifact"]).read_bytes()
    assert metrics["summary"]["storage_ratio"] == metrics["baseline"]["artifact_bytes"] / final["storage_bytes"]
    assert metrics["summary"]["storage_ratio"] >= 40  # Deep Compression's 39x on LeNet-5; seed 0: 41.4x


def test_compressed_torch_model_reloads_from_the_run_directory(demo_run):
    import torch

    from edgecompress.core.models import load_model

    result, _ = demo_run
    reloaded = load_model(str(result.out_dir / "model.safetensors")).module
    assert reloaded.conv2.out_channels == 32
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(reloaded(x), result.final_torch_model(x))
