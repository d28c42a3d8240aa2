import copy

import pytest
import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.masks import get_mask, set_mask
from edgecompress.techniques.prune.block_sparse import (
    BlockSparseLinear,
    block_sparsity,
    choose_block_sparse_path,
    convert_block_sparse,
)


def block_pruned_linear(out_features, in_features, block=(8, 8), sparsity=0.9, seed=0, bias=True) -> nn.Linear:
    """A Linear whose lowest-L1 blocks (exactly `sparsity` of them) are zero."""
    torch.manual_seed(seed)
    layer = nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(layer.weight * block_keep_mask(layer.weight, block, sparsity))
    return layer


def block_keep_mask(weight, block, sparsity):
    bh, bw = block
    rows, cols = weight.shape
    scores = weight.detach().abs().reshape(rows // bh, bh, cols // bw, bw).sum(dim=(1, 3))
    kept = round(scores.numel() * (1 - sparsity))
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[scores.flatten().topk(kept).indices] = True
    return keep.reshape(scores.shape).repeat_interleave(bh, 0).repeat_interleave(bw, 1)


def rel_error(actual, expected):
    return ((actual - expected).norm() / expected.norm()).item()


@pytest.mark.parametrize("block", [(8, 8), (32, 32)], ids=["bsr-8x8", "gather-32x32"])
@pytest.mark.parametrize("shape", [(16, 512), (4, 7, 512)], ids=["2d", "3d"])
def test_block_sparse_linear_matches_dense_under_inference_mode(block, shape):
    dense = block_pruned_linear(256, 512, block)
    sparse = BlockSparseLinear.from_linear(dense, block)
    assert sparse.layout == ("bsr" if block == (8, 8) else "gather")
    assert sparse.sparsity == pytest.approx(0.9, abs=1e-2)  # 32x32: 13 of 128 blocks kept
    x = torch.randn(shape)
    with torch.inference_mode():
        expected, actual = dense(x), sparse(x)
    assert actual.shape == (*shape[:-1], 256)
    assert rel_error(actual, expected) <= 1e-5


@pytest.mark.parametrize("layout", ["bsr", "gather"])
def test_block_sparse_linear_matches_dense_under_no_grad_without_bias(layout):
    dense = block_pruned_linear(64, 128, bias=False)
    sparse = BlockSparseLinear.from_linear(dense, (8, 8), layout=layout)
    x = torch.randn(5, 128)
    with torch.no_grad():
        assert rel_error(sparse(x), dense(x)) <= 1e-5


def test_block_sparse_linear_stores_only_kept_blocks_and_restores_the_dense_weight():
    dense = block_pruned_linear(256, 512)
    sparse = BlockSparseLinear.from_linear(dense)
    assert sparse.kept_blocks == round(32 * 64 * 0.1)
    assert sparse.values.numel() == sparse.kept_blocks * 64
    assert torch.equal(sparse.to_dense_weight(), dense.weight.detach())


def test_block_sparse_linear_survives_deepcopy_and_state_dict():
    sparse = BlockSparseLinear.from_linear(block_pruned_linear(64, 128))
    clone = copy.deepcopy(sparse)
    clone.load_state_dict(sparse.state_dict())
    x = torch.randn(3, 128)
    with torch.inference_mode():
        assert torch.equal(clone(x), sparse(x))


def test_masked_linear_is_converted_from_its_masked_weight():
    layer = block_pruned_linear(64, 128, sparsity=0.0)
    set_mask(layer, block_keep_mask(layer.weight, (8, 8), 0.9))
    sparse = BlockSparseLinear.from_linear(layer)
    assert sparse.sparsity == pytest.approx(0.9, abs=1e-2)
    assert torch.equal(sparse.to_dense_weight(), layer.weight.detach())
    assert get_mask(layer) is not None  # the source layer is left alone


def test_bsr_layout_refuses_inputs_that_need_grad():
    sparse = BlockSparseLinear.from_linear(block_pruned_linear(64, 128))
    with pytest.raises(UserError, match="inference-only"):
        sparse(torch.randn(2, 128, requires_grad=True))


def test_choose_path_follows_sparsity_and_batch():
    at_75 = block_pruned_linear(1024, 512, sparsity=0.75)
    at_90 = block_pruned_linear(1024, 512, sparsity=0.9)
    at_50 = block_pruned_linear(1024, 512, sparsity=0.5)
    small_90 = block_pruned_linear(256, 512, sparsity=0.9)
    assert choose_block_sparse_path(at_75, (8, 8), batch_hint=64)[0]
    assert not choose_block_sparse_path(at_75, (8, 8), batch_hint=1)[0]
    assert choose_block_sparse_path(at_90, (8, 8), batch_hint=1)[0]
    assert not choose_block_sparse_path(small_90, (8, 8), batch_hint=1)[0]
    use_sparse, reason = choose_block_sparse_path(at_50, (8, 8), batch_hint=64)
    assert not use_sparse and "50.0% < 75%" in reason


def test_convert_replaces_only_layers_above_the_threshold_and_reports_why():
    model = nn.Sequential(
        block_pruned_linear(128, 256, sparsity=0.9, seed=1),
        nn.ReLU(),
        nn.Sequential(block_pruned_linear(128, 128, sparsity=0.5, seed=2)),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    reference = copy.deepcopy(model)
    report = convert_block_sparse(model, block=(8, 8), min_sparsity=0.75)
    paths = {name: (path, reason) for name, path, reason in report}
    assert list(paths) == ["0", "2.0", "4"]
    assert paths["0"][0] == "bsr" and "90.0% >= 75%" in paths["0"][1]
    assert paths["2.0"][0] == "dense" and "50.0% < 75%" in paths["2.0"][1]
    assert paths["4"][0] == "dense" and "do not divide the 10x128 weight" in paths["4"][1]
    assert isinstance(model[0], BlockSparseLinear)
    assert type(model[2][0]) is nn.Linear and type(model[4]) is nn.Linear
    x = torch.randn(6, 256)
    with torch.inference_mode():
        assert rel_error(model(x), reference(x)) <= 1e-5


def test_block_that_does_not_divide_the_weight_is_refused():
    layer = nn.Linear(100, 64)
    with pytest.raises(UserError, match=r"^block: 8x8 blocks do not divide the 64x100 weight"):
        BlockSparseLinear.from_linear(layer, block=(8, 8))
    with pytest.raises(UserError, match=r"^block:"):
        choose_block_sparse_path(layer, (8, 8), batch_hint=16)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [({"block": (8, 0)}, "block"), ({"block": 8}, "block"), ({"min_sparsity": 1.5}, "min_sparsity"),
     ({"batch_hint": 0}, "batch_hint")],
)
def test_convert_validates_its_parameters(kwargs, parameter):
    with pytest.raises(UserError, match=rf"^{parameter}:"):
        convert_block_sparse(nn.Sequential(nn.Linear(16, 16)), **kwargs)


def test_block_sparsity_counts_all_zero_blocks():
    weight = torch.zeros(16, 16)
    weight[0, 0] = 1.0
    assert block_sparsity(weight, (8, 8)) == 0.75
