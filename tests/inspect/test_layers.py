import torch
from torch import nn

from edgecompress.core.models import DigitsCNN, DigitsMLP
from edgecompress.inspect import layer_table


def test_cnn_totals_equal_true_params_and_macs():
    table = layer_table(DigitsCNN(), (1, 1, 8, 8))
    assert table.params == 53_002
    assert table.bytes == 53_002 * 4
    # conv1: 6*6 outputs x 32 ch x 9; conv2: 4*4 x 64 x 32*9; fc1: 256*128; fc2: 128*10
    assert table.macs == 6 * 6 * 32 * 9 + 4 * 4 * 64 * 32 * 9 + 256 * 128 + 128 * 10 == 339_328
    rows = {r.name: r for r in table.rows}
    assert list(rows) == ["conv1", "conv2", "fc1", "fc2"]
    assert rows["conv2"].shape == "64x32x3x3" and rows["conv2"].macs == 294_912
    assert rows["fc1"].type == "Linear" and rows["fc1"].dtype == "float32"


def test_macs_scale_with_batch_size():
    assert layer_table(DigitsCNN(), (4, 1, 8, 8)).macs == 4 * 339_328


def test_mlp_totals():
    table = layer_table(DigitsMLP(), (1, 1, 8, 8))
    assert table.params == 64 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10 == 50_610
    assert table.macs == 64 * 300 + 300 * 100 + 100 * 10


def test_sparsity_counts_exact_zeros():
    model = DigitsCNN()
    with torch.no_grad():
        model.fc1.weight[:64].zero_()  # half the rows of fc1
    rows = {r.name: r for r in layer_table(model, (1, 1, 8, 8)).rows}
    assert rows["fc1"].zeros == 64 * 256
    assert abs(rows["fc1"].sparsity - 64 * 256 / 32_896) < 1e-12


def test_torch_prune_masks_are_counted_as_the_effective_weight():
    from torch.nn.utils import prune

    model = DigitsCNN()
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    rows = {r.name: r for r in layer_table(model, (1, 1, 8, 8)).rows}
    assert rows["fc1"].params == 32_896  # weight_orig + bias; the mask is not a parameter
    assert rows["fc1"].zeros == 128 * 256 // 2
    assert rows["fc1"].bytes == 32_896 * 4 + 128 * 256 * 4  # the float mask buffer is stored too


class Block(nn.Module):
    """A container that does a functional matmul of its own besides its child layer."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 8)
        self.mix = nn.Parameter(torch.ones(8, 2))

    def forward(self, x):
        return self.proj(x) @ self.mix


def test_functional_work_in_containers_is_counted_on_the_container():
    model = nn.Sequential(Block(), nn.Linear(2, 3))
    rows = {r.name: r for r in layer_table(model, (5, 4)).rows}
    assert rows["0.proj"].macs == 5 * 4 * 8
    assert rows["0"].macs == 5 * 8 * 2 and rows["0"].params == 16
    assert rows["1"].macs == 5 * 2 * 3
    assert layer_table(model, (5, 4)).macs == 5 * (32 + 16 + 6)
