"""The report's per-layer table says what happened to each layer, read from the models and the final ONNX file."""

from __future__ import annotations

import copy

import pytest
import torch

from edgecompress.core.models import DigitsCNN, DigitsMLP
from edgecompress.onnx import export_onnx
from edgecompress.reporting.report.layer_paths import layer_paths
from edgecompress.techniques.lowrank.svd import factorize_linear
from edgecompress.techniques.quantize.onnx_lowbit import cast_fp16, quantize_int4_weights


def test_pruned_layers_lost_half_their_channels_and_ship_as_int8(pruned_run):
    result = pruned_run
    paths = {p.name: p for p in layer_paths(result.baseline_model, result.final_torch_model, result.out_dir / "final.onnx")}
    assert list(paths) == ["conv1", "conv2", "fc1", "fc2"]
    assert paths["conv1"].path == "channels 32 -> 16 out; stored as int8 per channel"
    assert paths["conv2"].path == "channels 64 -> 32 out; 32 -> 16 in (follows the layer before); stored as int8 per channel"
    assert paths["fc1"].path == "channels 128 -> 64 out; 256 -> 128 in (follows the layer before); stored as int8 per channel"
    assert paths["fc2"].path == "128 -> 64 in (follows the layer before); stored as int8 per channel"  # classifier keeps its 10
    assert (paths["conv2"].shape_before, paths["conv2"].shape_after) == ((64, 32, 3, 3), (32, 16, 3, 3))
    assert paths["fc2"].weights_before == 1280 and paths["fc2"].nonzero_after == 640


@pytest.fixture(scope="module")
def mlp_pair(tmp_path_factory):
    """An MLP and a copy with fc1 factorized to rank 8, fc2 80% zero, fc3 ternary; its fp32, fp16 and int4 files."""
    torch.manual_seed(0)
    before = DigitsMLP().eval()
    after = copy.deepcopy(before)
    after.fc1 = factorize_linear(after.fc1, 8)
    with torch.no_grad():
        w = after.fc2.weight
        w[w.abs() < w.abs().quantile(0.8)] = 0
        w3 = after.fc3.weight
        w3.copy_(torch.sign(w3) * (w3.abs() > w3.abs().median()) * 0.05)
    out = tmp_path_factory.mktemp("paths")
    fp32 = export_onnx(after, torch.zeros(1, 64), out / "fp32.onnx")
    return before, after, fp32, cast_fp16(fp32, out / "fp16.onnx"), quantize_int4_weights(fp32, out / "int4.onnx")


def test_factorized_sparse_and_ternary_layers_are_named_as_such(mlp_pair):
    before, after, fp32, _, _ = mlp_pair
    paths = {p.name: p for p in layer_paths(before, after, fp32)}
    assert paths["fc1"].path == "factorized to rank 8 (of 64); stored as fp32" and paths["fc1"].shape_after is None
    assert paths["fc1"].nonzero_after == 8 * 64 + 300 * 8
    assert paths["fc2"].path == "80% of weights zero; stored as fp32"
    assert paths["fc3"].path == "50% of weights zero; on a grid of 3 levels per channel; stored as fp32"


def test_stored_type_comes_from_the_onnx_file(mlp_pair):
    before, after, _, fp16, int4 = mlp_pair
    assert {p.stored_as for p in layer_paths(before, after, fp16)} == {"fp16"}
    assert [p.stored_as for p in layer_paths(before, after, int4)] == ["int4 blocks"] * 3


def test_untouched_model_reads_unchanged():
    model = DigitsCNN()
    paths = layer_paths(model, model, None)
    assert [p.path for p in paths] == ["unchanged"] * 4 and {p.stored_as for p in paths} == {"-"}


def test_a_layer_only_quantized_says_just_how_it_is_stored(pruned_run):
    result = pruned_run
    paths = layer_paths(result.baseline_model, result.baseline_model, result.out_dir / "final.onnx")
    assert [p.path for p in paths] == ["stored as int8 per channel"] * 4


def test_ternary_layers_say_the_values_the_shipped_file_holds(demo_run, tmp_path):
    import onnx
    from onnx import numpy_helper

    result, _ = demo_run
    final = result.out_dir / "final.onnx"
    paths = {p.name: p.path for p in layer_paths(result.baseline_model, result.final_torch_model, final)}
    for name in ("conv2", "fc1"):  # the ternary layers: the file holds -64, 0 and 64 and nothing else
        assert paths[name].endswith("stored as int8 per channel with only the values {-64, 0, 64}"), paths[name]
        assert "grid" not in paths[name]
    assert paths["conv1"].endswith("stored as int8 per channel") and paths["fc2"].endswith("stored as int8 per channel")

    model = onnx.load(str(final))  # the same model with the ternary weights stored as +-127: the text follows the file
    for i, tensor in enumerate(model.graph.initializer):
        if tensor.name == "conv2.weight_quantized":
            values = numpy_helper.to_array(tensor)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array((values // 64 * 127).astype(values.dtype), tensor.name))
    onnx.save(model, str(tmp_path / "wide.onnx"))
    paths = {p.name: p.path for p in layer_paths(result.baseline_model, result.final_torch_model, tmp_path / "wide.onnx")}
    assert paths["conv2"].endswith("with only the values {-127, 0, 127}")
