import numpy as np
import pytest
import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params
from edgecompress.core.models import DigitsCNN, DigitsMLP
from edgecompress.onnx import export_onnx
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.lowrank.budget import LayerShape, allocate_ranks
from edgecompress.techniques.lowrank.conv import factorize_conv
from edgecompress.techniques.lowrank.factorize import factorize


def _chosen_params(model: nn.Module, names) -> int:
    return sum(count_params(model.get_submodule(n)) for n in names)


def test_two_thin_convolutions_are_the_truncated_svd_of_the_kernel():
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 10, 3, stride=2, padding=1)
    x = torch.randn(2, 6, 9, 9)
    with torch.no_grad():
        assert torch.allclose(factorize_conv(conv, rank=10)(x), conv(x), atol=1e-5)  # full rank is exact
        pair = factorize_conv(conv, rank=4)
        u, s, vh = torch.linalg.svd(conv.weight.reshape(10, -1), full_matrices=False)
        best = (u[:, :4] @ torch.diag(s[:4]) @ vh[:4]).reshape(conv.weight.shape)
        assert torch.allclose(pair(x), nn.functional.conv2d(x, best, conv.bias, stride=2, padding=1), atol=1e-5)
    assert count_params(pair) == 4 * (6 * 9 + 10) + 10 == LayerShape(10, 6 * 9, 10).params(4)


@pytest.mark.parametrize("keep", [0.2, 0.35, 0.5, 0.7])
@pytest.mark.parametrize("factory, names", [(DigitsMLP, ("fc1", "fc2")), (DigitsCNN, ("conv1", "conv2", "fc1"))])
def test_parameter_count_meets_the_budget_within_one_percent(factory, names, keep):
    model = factory()
    before_total, chosen = count_params(model), _chosen_params(model, names)
    report = factorize(model, keep=keep)
    after_chosen = count_params(model) - (before_total - chosen)
    assert abs(after_chosen - keep * chosen) <= 0.01 * keep * chosen
    assert set(report) <= set(names) and isinstance(model.get_submodule(list(dict(model.named_children()))[-1]), nn.Linear)


def test_allocation_keeps_a_layer_dense_when_no_rank_would_save_anything():
    thin, wide = LayerShape(1, 50, 1), LayerShape(300, 300, 300)
    ranks = allocate_ranks({"thin": thin, "wide": wide}, 0.5)
    assert ranks["thin"] is None and thin.max_rank == 0
    budget = 0.5 * (thin.dense + wide.dense)
    assert abs(wide.params(ranks["wide"]) + thin.dense - budget) <= 0.01 * budget


def test_factorized_cnn_exports_to_onnx_with_the_same_outputs(digits, tmp_path):
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    report = factorize(model, keep=0.4)
    assert {"conv2", "fc1"} <= set(report)
    x, _ = next(iter(digits.eval_loader))
    session = make_session(export_onnx(model, x[:1], tmp_path / "f.onnx"))
    ours = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(ours, model(x).numpy(), atol=1e-4)


def test_rank_by_energy_factorizes_convolutions_too():
    model = DigitsCNN()
    with torch.no_grad():  # conv2's kernel of rank 5: 5 of its singular values hold all its energy
        model.conv2.weight.copy_((torch.randn(64, 5) @ torch.randn(5, 32 * 9)).reshape(64, 32, 3, 3))
    assert factorize(model, keep=None, energy=0.999, layers=("conv2",))["conv2"] == (5, 64)


def test_bad_factorize_settings():
    with pytest.raises(UserError, match="factorize.layers"):
        factorize(DigitsCNN(), layers=("decoder*",))
    with pytest.raises(UserError, match="exactly one of keep"):
        factorize(DigitsCNN(), keep=0.5, energy=0.9)
