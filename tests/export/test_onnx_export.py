import numpy as np
import onnx
import torch

from edgecompress.core.models import DigitsCNN
from edgecompress.onnx import export_onnx
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
