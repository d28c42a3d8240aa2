import contextlib
import io

import pytest
import torch
from pydantic import ValidationError
from torch import nn

import edgecompress as ec
from edgecompress.core.masks import set_mask
from edgecompress.core.models import DigitsCNN
from edgecompress.core.train import train_epochs
from edgecompress.techniques.quantize.qat import prepare_qat, quantize_to_grid


def distinct_levels(weight):
    """Largest number of distinct values in one output channel (at most 2^bits - 1 after QAT, 3 for ternary)."""
    return max(int(torch.unique(row).numel()) for row in weight.detach().reshape(weight.shape[0], -1))


def test_grid_has_at_most_2_pow_bits_minus_1_levels_per_channel_and_keeps_zero():
    torch.manual_seed(0)
    w = torch.randn(16, 64)
    w[:, 0] = 0.0
    for bits, levels in ((2, 3), (4, 15), (8, 255)):
        q = quantize_to_grid(w, bits)
        assert distinct_levels(q) <= levels and torch.all(q[:, 0] == 0)
        assert torch.allclose(q.abs().amax(dim=1), w.abs().amax(dim=1))  # the extreme value is on the grid
    ternary = quantize_to_grid(w, "ternary")
    assert distinct_levels(ternary) <= 3


def test_zero_channel_does_not_divide_by_zero():
    assert torch.equal(quantize_to_grid(torch.zeros(2, 3), 4), torch.zeros(2, 3))


def test_straight_through_gradient_reaches_the_float_weight():
    layer = nn.Linear(4, 2)
    prepare_qat({"layer": layer}, 4)
    layer(torch.ones(1, 4)).sum().backward()
    assert torch.allclose(layer.parametrizations.weight.original.grad, torch.ones(2, 4))


def test_qat_after_pruning_keeps_zeros_and_the_grid(small_digits_task):
    torch.manual_seed(0)
    model = DigitsCNN()
    keep = torch.rand(model.fc1.weight.shape) > 0.7
    set_mask(model.fc1, keep)
    prepare_qat({"fc1": model.fc1}, 4)
    train_epochs(model, small_digits_task, epochs=2, lr=1e-2)
    assert torch.all(model.fc1.weight[~keep] == 0)
    assert distinct_levels(model.fc1.weight) <= 15


def test_qat_4_bit_then_int8_keeps_accuracy_and_packs_smaller(trained_cnn, digits, tmp_path):
    with contextlib.redirect_stderr(io.StringIO()):
        result = ec.compress(trained_cnn, digits, [ec.Qat(bits=4, epochs=4), ec.Quantize()], tmp_path / "q4")
    assert result.final.score >= result.baseline.score - 1.0
    plain_int8 = ec.compress(trained_cnn, digits, [ec.Quantize()], tmp_path / "q8")
    assert result.final.storage_bytes < 0.75 * plain_int8.final.storage_bytes  # 4-bit weights pack smaller


def test_bits_out_of_range_are_refused():
    with pytest.raises(ValidationError, match="bits must be from 2 to 8"):
        ec.Qat(bits=1)
    with pytest.raises(ValidationError):
        ec.Qat(bits="binary")
