"""Physical channel removal on architectures with dependencies: residual adds with batch-norm, depthwise convs."""

import numpy as np
import torch
from torch import nn

from edgecompress.core.measure.params import count_params
from edgecompress.core.models import DigitsMLP
from edgecompress.core.models.checkpoint import resize_to_saved, save_model_file
from edgecompress.onnx import export_onnx
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.runtime.sessions import make_session
from edgecompress.techniques.prune.engine import prune_model
from tests.prune.test_channel import prune_channels


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ResidualNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = ResidualBlock(16)
        self.block2 = ResidualBlock(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


class DepthwiseSeparable(nn.Module):
    """MobileNet-style: depthwise 3x3 then pointwise 1x1, each with batch-norm."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.bn1 = nn.BatchNorm2d(16)
        self.pointwise = nn.Conv2d(16, 32, 1)
        self.bn2 = nn.BatchNorm2d(32)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.bn1(self.depthwise(x)))
        x = torch.relu(self.bn2(self.pointwise(x)))
        return self.head(x.mean(dim=(2, 3)))


def _randomize_bn(model):
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _check_pruned_model(model, tmp_path, factory):
    before = count_params(model)
    model = prune_channels(model, torch.zeros(1, 1, 8, 8), amount=0.5)
    assert count_params(model) < before * 0.45
    x = torch.rand(5, 1, 8, 8)
    path = export_onnx(model, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")
    onnx_out = make_session(path).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(onnx_out, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    saved = save_model_file(model, tmp_path / "m.safetensors")
    reloaded = resize_to_saved(factory().eval(), saved)
    assert torch.equal(reloaded(x), model(x))
    return model


def test_residual_net_with_batch_norm_keeps_its_adds_consistent(tmp_path):
    model = _randomize_bn(ResidualNet())
    model = _check_pruned_model(model, tmp_path, ResidualNet)
    # the residual adds tie stem, block1.conv2 and block2.conv2 outputs: all shrink together
    assert model.stem[0].out_channels == model.block1.conv2.out_channels == model.block2.conv2.out_channels == 8
    assert model.block1.bn2.num_features == 8 and model.head.in_features == 8


def test_depthwise_separable_block_prunes_groups_with_their_channels(tmp_path):
    model = _randomize_bn(DepthwiseSeparable())
    model = _check_pruned_model(model, tmp_path, DepthwiseSeparable)
    assert model.depthwise.groups == model.depthwise.in_channels == model.depthwise.out_channels == 8
    assert model.pointwise.in_channels == 8 and model.bn2.num_features == 16


def test_digits_mlp_loses_half_its_hidden_neurons_and_keeps_its_classes(tmp_path):
    model = DigitsMLP()
    prune_model(model, Prune(pattern="channel", amount=0.5), torch.zeros(1, 1, 8, 8), train=lambda *a, **k: None)
    assert (model.fc1.out_features, model.fc2.in_features, model.fc2.out_features, model.fc3.in_features) == (150, 150, 50, 50)
    assert model.fc3.out_features == 10 and model(torch.rand(4, 1, 8, 8)).shape == (4, 10)
    saved = save_model_file(model, tmp_path / "mlp.safetensors")
    assert torch.equal(resize_to_saved(DigitsMLP(), saved).fc2.weight, model.fc2.weight)
