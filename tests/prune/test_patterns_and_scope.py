import pytest
import torch

from edgecompress.core.errors import UserError
from edgecompress.core.masks import get_mask
from edgecompress.core.models import DigitsCNN
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.engine import prune_model


def _prune(config, model=None, **kwargs):
    model = model or DigitsCNN()
    torch.manual_seed(0)
    return prune_model(model, config, torch.zeros(1, 1, 8, 8), train=lambda *a, **k: None, **kwargs)


def _zeros(module):
    return int((get_mask(module) == 0).sum())


def test_unstructured_per_layer_sparsity_is_exact():
    model = _prune(Prune(pattern="unstructured", amount=0.37))
    for layer in (model.conv1, model.conv2, model.fc1):
        assert _zeros(layer) == round(0.37 * layer.weight.numel())
    assert get_mask(model.fc2) is None  # the classifier is kept by default


def test_unstructured_global_sparsity_is_exact_over_selected_layers():
    model = _prune(Prune(pattern="unstructured", amount=0.9, scope="global"))
    layers = (model.conv1, model.conv2, model.fc1)
    total = sum(layer.weight.numel() for layer in layers)
    assert sum(_zeros(layer) for layer in layers) == round(0.9 * total)
    per_layer = [_zeros(layer) / layer.weight.numel() for layer in layers]
    assert max(per_layer) - min(per_layer) > 0.01  # global scope really differs per layer


def test_global_magnitude_removes_the_smallest_weights_anywhere():
    torch.manual_seed(0)
    model = DigitsCNN()
    with torch.no_grad():
        model.fc1.weight.mul_(1e-6)  # fc1 is clearly least important
    _prune(Prune(pattern="unstructured", amount=0.5, scope="global"), model)
    assert _zeros(model.fc1) == round(0.5 * (288 + 18_432 + 32_768))
    assert _zeros(model.conv1) == _zeros(model.conv2) == 0


def test_block_pattern_removes_whole_blocks_and_the_lowest_l1_ones():
    model = DigitsCNN()
    with torch.no_grad():
        model.fc1.weight[:8, :8] = 100.0  # the strongest block must survive
    _prune(Prune(pattern="block", block=(8, 8), amount=0.75, layers=("conv2", "fc1")), model)
    mask = get_mask(model.fc1)
    blocks = mask.reshape(16, 8, 32, 8).sum(dim=(1, 3))
    assert set(blocks.unique().tolist()) <= {0.0, 64.0}
    assert int((blocks == 0).sum()) == round(0.75 * 16 * 32)
    assert blocks[0, 0] == 64
    conv_blocks = get_mask(model.conv2).reshape(8, 8, 36, 8).sum(dim=(1, 3))
    assert set(conv_blocks.unique().tolist()) <= {0.0, 64.0}


def test_block_shape_that_does_not_divide_is_refused():
    with pytest.raises(UserError, match=r"prune.pattern: 8x8 blocks do not divide layer conv1's 32x9"):
        _prune(Prune(pattern="block", block=(8, 8)))


def test_nm_keeps_n_of_every_m_consecutive_weights():
    model = _prune(Prune(pattern="nm", n=2, m=4, layers=("conv2", "fc1")))
    for layer in (model.conv2, model.fc1):
        groups = get_mask(layer).reshape(layer.weight.shape[0], -1, 4)
        assert torch.all(groups.sum(dim=2) == 2)


def test_per_layer_amounts_override_the_default():
    model = _prune(Prune(pattern="unstructured", amount=0.5, per_layer={"fc1": 0.9, "conv*": 0.1}))
    assert _zeros(model.fc1) == round(0.9 * 32768)
    assert _zeros(model.conv2) == round(0.1 * 18432)


def test_layer_pattern_that_matches_nothing_is_refused():
    with pytest.raises(UserError, match="prune.layers: pattern 'decoder.*' matches no"):
        _prune(Prune(pattern="unstructured", layers=("decoder.*",)))
    with pytest.raises(UserError, match="prune.per_layer: pattern 'head' matches no selected layer"):
        _prune(Prune(pattern="unstructured", per_layer={"head": 0.5}))


def test_amount_zero_prunes_nothing():
    model = _prune(Prune(pattern="unstructured", amount=0.0))
    assert _zeros(model.fc1) == 0


def test_layers_are_selected_by_type_as_well_as_by_name():
    model = _prune(Prune(pattern="unstructured", amount=0.5, types=("Linear",)))
    assert _zeros(model.fc1) == 16384  # the only Linear left once the classifier is kept
    assert get_mask(model.conv1) is None and get_mask(model.conv2) is None and get_mask(model.fc2) is None
    model = _prune(Prune(pattern="unstructured", amount=0.5, keep_classifier=False, layers=("fc*",)))
    assert _zeros(model.fc2) == 640 and get_mask(model.conv2) is None


def test_row_scope_removes_the_amount_from_every_output_row_and_the_lowest_of_each():
    model = DigitsCNN()
    with torch.no_grad():  # row 0 of fc1 is ten times larger than the rest: a layer-wide cut would keep all of it
        model.fc1.weight[0] *= 10
    _prune(Prune(pattern="unstructured", criterion="l1", amount=0.25, scope="row"), model)
    for layer in (model.conv1, model.conv2, model.fc1):
        removed = (get_mask(layer) == 0).reshape(layer.weight.shape[0], -1)
        per_row = removed[0].numel()
        assert removed.sum(dim=1).tolist() == [round(0.25 * per_row)] * layer.weight.shape[0]
        weights = layer.weight.detach().abs().reshape(layer.weight.shape[0], -1)
        for row, gone in zip(weights, removed):
            assert row[gone].max() <= row[~gone].min()


def test_row_scope_on_blocks_compares_the_blocks_of_a_block_row():
    model = _prune(Prune(pattern="block", block=(8, 8), amount=0.5, scope="row", layers=("fc1",)))
    kept_blocks = get_mask(model.fc1).reshape(16, 8, 32, 8)[:, 0, :, 0]  # fc1 is 128 x 256: one flag per 8x8 block
    assert kept_blocks.sum(dim=1).tolist() == [16] * 16


def test_row_scope_with_channels_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="scope row does not apply to pattern channel.*use scope layer or global"):
        Prune(pattern="channel", scope="row")
