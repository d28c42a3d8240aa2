import math

import pytest
import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN
from edgecompress.techniques.quantize.layer_error import (
    fake_quantize_activation,
    fake_quantize_weight,
    layer_quantization_error,
)


def sqnr_db(reference: torch.Tensor, approximation: torch.Tensor) -> float:
    return 10 * math.log10(reference.square().sum().item() / (reference - approximation).square().sum().item())


@pytest.fixture
def random_linear():
    torch.manual_seed(0)
    return nn.Linear(256, 128), [(torch.randn(64, 256), torch.zeros(64))]


def test_each_bit_adds_about_six_db(random_linear):
    layer, batches = random_linear
    sqnr = {
        bits: layer_quantization_error(layer, batches, bits=bits, quantize_activations=False)[0].sqnr_db
        for bits in (4, 8)
    }
    assert 40 < sqnr[8] < 55  # measured 48.1 dB
    assert 20 < sqnr[8] - sqnr[4] < 28  # 6.02 dB/bit x 4 bits = 24 dB; measured 25.0


def test_sqnr_and_relative_error_agree_with_a_direct_computation(random_linear):
    layer, batches = random_linear
    row = layer_quantization_error(layer, batches, quantize_activations=False)[0]
    x = batches[0][0]
    with torch.no_grad():
        expected = sqnr_db(layer(x), nn.functional.linear(x, fake_quantize_weight(layer.weight), layer.bias))
    assert row.sqnr_db == pytest.approx(expected, rel=1e-4)
    assert row.relative_error == pytest.approx(10 ** (-row.sqnr_db / 20))
    assert (row.name, row.layer_type) == ("", "Linear")


def test_per_channel_beats_per_tensor_when_one_channel_is_much_larger(random_linear):
    layer, batches = random_linear
    with torch.no_grad():
        layer.weight[0] *= 100  # per-tensor: every other row gets a step 100x too coarse
    per_channel = layer_quantization_error(layer, batches, per_channel=True, quantize_activations=False)[0]
    per_tensor = layer_quantization_error(layer, batches, per_channel=False, quantize_activations=False)[0]
    assert per_channel.sqnr_db > per_tensor.sqnr_db + 10  # measured 49.8 vs 29.3 dB

    weight = layer.weight.detach()
    assert sqnr_db(weight[1:], fake_quantize_weight(weight)[1:]) > sqnr_db(weight[1:], fake_quantize_weight(weight, per_channel=False)[1:]) + 30


def test_zero_and_constant_weights_do_not_divide_by_zero():
    zeros = torch.zeros(4, 3)
    assert torch.equal(fake_quantize_weight(zeros), zeros)
    assert torch.equal(fake_quantize_weight(zeros, per_channel=False), zeros)
    constant = torch.full((2, 5), 0.5)
    assert torch.allclose(fake_quantize_weight(constant, bits=2), constant)

    layer = nn.Linear(3, 4)
    nn.init.zeros_(layer.weight)
    row = layer_quantization_error(layer, [torch.randn(8, 3)])[0]
    assert row.sqnr_db == math.inf and row.relative_error == 0.0  # output = bias, exactly kept


def test_constant_zero_activations_stay_exact():
    x = torch.zeros(3, 4)
    assert torch.equal(fake_quantize_activation(x, low=0.0, high=0.0), x)


def test_activation_grid_is_uint8_over_the_calibration_range():
    x = torch.cat([torch.linspace(-1.0, 3.0, 1001), torch.zeros(1)])
    quantized = fake_quantize_activation(x, low=-1.0, high=3.0)
    assert quantized.unique().numel() == 256
    assert (quantized - x).abs().max() <= 4.0 / 255 / 2 + 1e-6
    assert quantized[x == 0].item() == 0.0  # zero is exactly representable (padding, ReLU outputs)


class TwoLayers(nn.Sequential):
    def __init__(self):
        super().__init__()
        self.smooth = nn.Linear(32, 32)
        self.act = nn.ReLU()
        self.spiky = nn.Linear(32, 16)
        self.conv_unused = nn.Conv2d(1, 1, 1)  # never called in forward


def two_layers():
    torch.manual_seed(0)
    model = TwoLayers()
    model.forward = lambda x: model.spiky(model.act(model.smooth(x)))
    with torch.no_grad():
        model.spiky.weight[0] *= 50
    return model, [(torch.randn(16, 32), torch.zeros(16)) for _ in range(3)]


def test_rows_are_sorted_worst_first_and_skip_layers_never_called():
    model, batches = two_layers()
    rows = layer_quantization_error(model, batches, per_channel=False)
    assert [r.name for r in rows] == ["spiky", "smooth"]
    assert rows[0].sqnr_db < rows[1].sqnr_db


def test_layer_patterns_select_layers():
    model, batches = two_layers()
    assert [r.name for r in layer_quantization_error(model, batches, layers=("smo*",))] == ["smooth"]


def test_model_and_its_mode_are_left_unchanged():
    model, batches = two_layers()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_quantization_error(model, iter(batches))  # a one-shot iterator is enough
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())


def test_digits_cnn_conv_and_linear_layers_keep_over_40_db_at_8_bits(digits):
    torch.manual_seed(0)
    cnn = DigitsCNN()  # untrained is enough: the error depends on weight and input ranges, not on accuracy
    rows = layer_quantization_error(cnn, digits.train_loader, max_batches=4)
    assert sorted(r.name for r in rows) == ["conv1", "conv2", "fc1", "fc2"]
    assert {r.layer_type for r in rows} == {"Conv2d", "Linear"}
    assert all(r.sqnr_db > 40 for r in rows)
    assert all(r.sqnr_db < 35 for r in layer_quantization_error(cnn, digits.train_loader, max_batches=4, bits=4))


@pytest.mark.parametrize("kwargs, message", [
    ({"bits": 1}, "bits: must be an integer from 2 to 8, got 1"),
    ({"bits": 16}, "bits: must be an integer from 2 to 8, got 16"),
    ({"activation_bits": 9}, "activation_bits: must be an integer from 2 to 8"),
    ({"max_batches": 0}, "max_batches: must be a positive integer"),
    ({"layers": ("nothing*",)}, "layers: pattern 'nothing\\*' matches no Linear/Conv2d layer"),
    ({"batches": []}, "batches: the calibration data yielded no batches"),
])
def test_bad_arguments_are_user_errors(kwargs, message):
    model, batches = two_layers()
    kwargs = {"batches": batches, **kwargs}
    with pytest.raises(UserError, match=message):
        layer_quantization_error(model, **kwargs)


def test_fake_quantize_weight_rejects_unsupported_bits():
    with pytest.raises(UserError, match="bits: must be an integer from 2 to 8"):
        fake_quantize_weight(torch.ones(2, 2), bits=12)
