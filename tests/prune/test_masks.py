import torch
from torch import nn

from edgecompress.core.masks import finalized_copy, get_mask, set_mask
from edgecompress.core.models import DigitsCNN
from edgecompress.core.train import train_epochs
from edgecompress.onnx import export_onnx


def test_pruned_weights_stay_exactly_zero_through_any_number_of_optimizer_steps(small_task):
    torch.manual_seed(0)
    model = DigitsCNN()
    keep = torch.rand(model.fc1.weight.shape) > 0.8
    set_mask(model.fc1, keep)
    train_epochs(model, small_task, epochs=5, lr=1e-2, weight_decay=1e-3)
    assert torch.all(model.fc1.weight[~keep] == 0)
    assert torch.count_nonzero(model.fc1.weight[keep]) == keep.sum()


def test_a_second_mask_only_adds_zeros():
    layer = nn.Linear(4, 4)
    first = torch.tensor([[1, 0, 1, 1]] * 4, dtype=torch.bool)
    second = torch.tensor([[1, 1, 0, 1]] * 4, dtype=torch.bool)
    set_mask(layer, first)
    set_mask(layer, second)
    assert torch.equal(get_mask(layer).bool(), first & second)


def test_finalized_copy_is_plain_and_leaves_the_original_masked(tmp_path):
    model = DigitsCNN()
    set_mask(model.conv2, torch.rand(model.conv2.weight.shape) > 0.5)
    plain = finalized_copy(model)
    assert type(plain.conv2) is nn.Conv2d and get_mask(plain.conv2) is None
    assert get_mask(model.conv2) is not None
    assert torch.equal(plain.conv2.weight, model.conv2.weight.detach())
    x = torch.rand(2, 1, 8, 8)
    assert torch.allclose(plain(x), model(x))
    assert set(plain.state_dict()) == set(DigitsCNN().state_dict())


def test_masked_model_exports_without_its_masks(tmp_path):
    model = DigitsCNN()
    set_mask(model.fc1, torch.zeros(model.fc1.weight.shape, dtype=torch.bool))
    masked = export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "masked.onnx")
    dense = export_onnx(DigitsCNN(), torch.zeros(1, 1, 8, 8), tmp_path / "dense.onnx")
    assert abs(masked.stat().st_size - dense.stat().st_size) < 100  # zeros are stored densely, masks not at all
