import numpy as np
import onnx
import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.core.evaluate import score_onnx
from edgecompress.core.models import DigitsCNN
from edgecompress.onnx import export_onnx
from edgecompress.onnx.export import check_dynamic_batch
from edgecompress.runtime.sessions import make_session


def test_export_matches_torch_for_any_batch_size(tmp_path):
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    path = export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    session = make_session(path)
    for batch in (1, 7, 256):
        x = torch.rand(batch, 1, 8, 8)
        got = session.run(None, {"input": x.numpy()})[0]
        np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_export_is_one_file_without_debug_records(tmp_path):
    path = export_onnx(DigitsCNN(), torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    proto = onnx.load(str(path))
    assert all(len(node.metadata_props) == 0 for node in proto.graph.node)
    assert b"stack_trace" not in path.read_bytes() and str(tmp_path).encode() not in path.read_bytes()


def test_same_model_exports_to_identical_bytes(tmp_path):
    torch.manual_seed(0)
    model = DigitsCNN()
    a = export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "a.onnx").read_bytes()
    b = export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "b.onnx").read_bytes()
    assert a == b


class RowGRU(torch.nn.Module):
    """Issue 18's model: a GRU over the 8 image rows + a Linear head. Traced at batch 1, the exporter fixed
    its batch axis at 1 and scoring at batch 256 failed with "Got invalid dimensions"."""

    def __init__(self):
        super().__init__()
        self.gru, self.head = torch.nn.GRU(8, 64, batch_first=True), torch.nn.Linear(64, 10)

    def forward(self, x):
        _, hidden = self.gru(x.reshape(x.shape[0], 8, 8))
        return self.head(hidden[-1])


def _batch_dims(path):
    graph = onnx.load(str(path)).graph
    return {v.name: v.type.tensor_type.shape.dim[0].dim_param for v in [*graph.input, *graph.output]}


def test_gru_over_rows_exports_with_a_dynamic_batch_axis(digits, tmp_path):
    torch.manual_seed(0)
    model = RowGRU().eval()
    path = export_onnx(model, digits.example_input(), tmp_path / "gru.onnx")
    assert _batch_dims(path) == {"input": "batch", "output": "batch"}
    session = make_session(path)
    for batch in (1, 256):
        x = torch.rand(batch, 1, 8, 8)
        got = session.run(None, {"input": x.numpy()})[0]
        np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_gru_recipe_with_only_a_quantize_stage_is_scored_at_every_batch(digits, tmp_path):
    import edgecompress as ec

    torch.manual_seed(0)
    result = ec.compress(RowGRU(), digits, [ec.Quantize()], tmp_path / "run")
    assert _batch_dims(tmp_path / "run" / "final.onnx") == {"input": "batch", "output": "batch"}
    assert set(result.final.latency) == {1, 256}, "timed at batch 1 and 256"
    assert score_onnx(tmp_path / "run" / "final.onnx", digits) == result.final.score  # scored in batches of 256
    assert abs(result.final.score - result.baseline.score) <= 2.0


class FixedBatch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.reshape(1, 64))


class PooledOverBatch(FixedBatch):
    def forward(self, x):
        return self.fc(x.flatten(1)).mean(0, keepdim=True)


@pytest.mark.parametrize(
    "model, message",
    [
        (FixedBatch, r"model: FixedBatch fails on a batch of 3 samples \(.*\); make forward\(\) follow x.shape\[0\]"),
        (PooledOverBatch, r"model: PooledOverBatch returns 1x10 for a batch of 3; axis 0 of its output must be the batch"),
    ],
)
def test_a_model_with_a_fixed_batch_is_refused_before_any_work(model, message, digits, tmp_path):
    import edgecompress as ec

    with pytest.raises(ec.UserError, match=message) as caught:
        ec.compress(model(), digits, [ec.Prune(amount=0.5), ec.Finetune(epochs=1)], tmp_path / "run")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_an_exported_graph_with_a_fixed_batch_axis_is_refused_naming_it():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
    )
    with pytest.raises(UserError, match=r"^export: Mine fixes the batch axis \(axis 0\) of its ONNX output 'output' at 1, so ONNX Runtime"):
        check_dynamic_batch(helper.make_model(graph), "Mine")
    check_dynamic_batch(helper.make_model(helper.make_graph([], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])))
