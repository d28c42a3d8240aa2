"""The exactness check: every integer node recomputed from its own inputs, on this CPU or an emulated one."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from edgecompress.onnx import export_onnx
from edgecompress.runtime.exactness import check_exactness
from edgecompress.runtime.feeds import input_feeds
from edgecompress.runtime.runners import runner_for
from edgecompress.techniques.quantize.exact_int8 import ensure_exact_int8
from edgecompress.techniques.quantize.onnx_dynamic import quantize_dynamic_int8
from edgecompress.techniques.quantize.onnx_static import quantize_static_int8


def _feeds(task, path, count=2):
    return [feed for feed, _ in zip(input_feeds(task.train_loader, path), range(count))]


@pytest.fixture(scope="module")
def cnn_fp32(trained_cnn, tmp_path_factory):
    path = tmp_path_factory.mktemp("cnn") / "fp32.onnx"
    export_onnx(trained_cnn, torch.zeros(1, 1, 8, 8), path)
    return path


@pytest.mark.parametrize("graph_format", ["qoperator", "qdq"])
def test_every_integer_node_of_a_static_int8_cnn_matches_the_exact_reference(cnn_fp32, digits, tmp_path, graph_format):
    int8 = quantize_static_int8(cnn_fp32, tmp_path / "int8.onnx", digits.train_loader, max_batches=4, graph_format=graph_format)
    report = check_exactness(int8, _feeds(digits, int8))
    # QDQ is checked as ONNX Runtime fuses it: into the same QLinearConv and QGemm nodes
    assert sorted(n.op for n in report.nodes) == ["QGemm", "QGemm", "QLinearConv", "QLinearConv"]
    assert report.exact and report.off_fraction == 0.0
    assert all(n.max_error_steps <= 1.0 and n.outputs >= 640 for n in report.nodes)  # 1 step: float32 rounding
    assert all(n.weight_max_abs == 64 for n in report.nodes)  # the default: 7-bit weights


def test_dynamic_int8_matmuls_match_the_exact_reference(trained_mlp, digits, tmp_path):
    fp32 = tmp_path / "mlp.onnx"
    export_onnx(trained_mlp, torch.zeros(1, 1, 8, 8), fp32)
    int8 = quantize_dynamic_int8(fp32, tmp_path / "int8.onnx")
    report = check_exactness(int8, _feeds(digits, int8))
    assert {n.op for n in report.nodes} == {"MatMulInteger"} and len(report.nodes) == 3
    assert report.exact and all(n.max_error_steps == 0.0 for n in report.nodes)


class _AllOnes(nn.Module):
    """A Linear whose weights are all +-1: as full int8 every pair of products is 255 x 127 x 2 = 64,770."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 16)
        with torch.no_grad():
            signs = torch.ones(16, 64)
            signs[1::2] = -1.0
            self.fc.weight.copy_(signs)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_a_graph_that_saturates_on_avx2_is_caught_there_and_repaired_with_7_bit_weights(tmp_path):
    fp32 = tmp_path / "ones.onnx"
    export_onnx(_AllOnes(), torch.zeros(1, 64), fp32)
    inputs = torch.rand(64, 64, generator=torch.Generator().manual_seed(0))
    inputs[:, :4] = 1.0  # some activations at 255, next to each other
    batches = [(inputs[i : i + 32], torch.zeros(32)) for i in (0, 32)]

    def write(weight_bits):
        return quantize_static_int8(fp32, tmp_path / "int8.onnx", batches, weight_bits=weight_bits)

    avx2 = runner_for("x86-avx2")  # this machine if it has no VNNI, else qemu's Haswell
    saturating = check_exactness(write(8), list(input_feeds(batches, fp32)), avx2, cpu="x86-avx2")
    assert not saturating.exact and saturating.nodes[0].off_fraction > 0.5 and saturating.nodes[0].weight_max_abs == 127

    record = ensure_exact_int8(write, input_feeds(batches, fp32), "x86-vnni", runner=avx2, cpu="x86-avx2")
    assert record["weight_bits"] == 7 and record["repaired"]["off_nodes"] == [saturating.nodes[0].node]
    assert record["exactness"]["exact"] and record["exactness"]["off_fraction"] == 0.0
    weights = [numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "int8.onnx")).graph.initializer if t.name.endswith("weight_quantized")]
    assert np.abs(weights[0]).max() == 64
