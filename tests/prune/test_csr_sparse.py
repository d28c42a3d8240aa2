"""The unstructured sparse-kernel path: CSR Linear, same outputs as dense, taken only where it measured faster."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.masks import get_mask, set_mask
from edgecompress.techniques.prune.csr_sparse import CsrLinear, choose_csr_path, convert_csr


def sparse_linear(out_features, in_features, sparsity, seed=0, bias=True) -> nn.Linear:
    """A Linear with exactly `sparsity` of its weights (the smallest) at zero."""
    torch.manual_seed(seed)
    layer = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        flat = layer.weight.view(-1)
        flat[flat.abs().argsort()[: round(sparsity * flat.numel())]] = 0
    return layer


def rel_error(actual, expected):
    return ((actual - expected).norm() / expected.norm()).item()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(16, 256), (3, 5, 256)], ids=["2d", "3d"])
def test_csr_linear_matches_dense_and_stores_only_the_nonzeros(shape, bias):
    dense = sparse_linear(128, 256, 0.9, bias=bias)
    sparse = CsrLinear.from_linear(dense)
    assert sparse.nnz == round(0.1 * 128 * 256) and sparse.sparsity == pytest.approx(0.9, abs=1e-4)
    x = torch.randn(shape)
    with torch.inference_mode():
        actual, expected = sparse(x), dense(x)
    assert actual.shape == (*shape[:-1], 128) and rel_error(actual, expected) <= 1e-5


def test_csr_linear_from_a_masked_layer_survives_deepcopy_and_refuses_grad():
    layer = sparse_linear(64, 128, 0.0)
    set_mask(layer, torch.rand(layer.weight.shape, generator=torch.Generator().manual_seed(0)) > 0.95)
    sparse = copy.deepcopy(CsrLinear.from_linear(layer))
    x = torch.randn(4, 128)
    with torch.no_grad():
        assert rel_error(sparse(x), layer(x)) <= 1e-5
    assert get_mask(layer) is not None
    with pytest.raises(UserError, match="^x: CsrLinear is inference-only"):
        sparse(x.requires_grad_())


def test_csr_path_is_taken_from_90_percent_at_batch_16_and_95_percent_below_on_large_layers():
    at_90, at_95 = sparse_linear(1024, 512, 0.9), sparse_linear(1024, 512, 0.95)
    assert choose_csr_path(at_90, batch_hint=16)[0] and not choose_csr_path(at_90, batch_hint=1)[0]
    assert choose_csr_path(at_95, batch_hint=1)[0]
    small = sparse_linear(128, 256, 0.95)
    use, reason = choose_csr_path(small, batch_hint=16)
    assert not use and reason.endswith("128x256 is too small at batch 16: call overhead eats the skipped work")
    assert choose_csr_path(small, batch_hint=256)[0]
    use, reason = choose_csr_path(sparse_linear(64, 64, 0.7), batch_hint=256)
    assert not use and reason == "unstructured sparsity 70.0% < 90%: torch CSR breaks even only at 70-95% on this CPU"


def test_convert_replaces_only_the_layers_where_csr_pays():
    model = nn.Sequential(sparse_linear(128, 64, 0.92, seed=1), nn.ReLU(), sparse_linear(10, 128, 0.5, seed=2))
    reference = copy.deepcopy(model)
    report = convert_csr(model, batch_hint=256)
    assert [(name, path) for name, path, _ in report] == [("0", "csr"), ("2", "dense")]
    assert isinstance(model[0], CsrLinear) and type(model[2]) is nn.Linear
    x = torch.randn(64, 64)
    with torch.inference_mode():
        assert rel_error(model(x), reference(x)) <= 1e-5
    with pytest.raises(UserError, match="^batch_hint:"):
        convert_csr(model, batch_hint=0)
