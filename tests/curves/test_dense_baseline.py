"""The smaller dense model of any architecture: the user's model thinned uniformly (Torch-Pruning, the same
ratio in every layer, never the outputs) to a pruned point's parameter count, with fresh weights (issue 18)."""

import pytest
import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params
from edgecompress.core.models.reinitialise import reinitialise
from edgecompress.orchestration.curves.dense_baseline import thinned_architecture
from edgecompress.techniques.prune.uniform import layer_widths, thin_uniformly

EXAMPLE = torch.zeros(1, 1, 8, 8)


class ResidualCNN(nn.Module):
    """Defined here, as a user would: batch-norm, a residual sum, a depthwise convolution."""

    def __init__(self, channels=32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels),
        )
        self.fc1, self.fc2 = nn.Linear(channels * 16, 64), nn.Linear(64, 10)

    def forward(self, x):
        h = self.stem(x)
        h = torch.max_pool2d(torch.relu(h + self.block(h)), 2)
        return self.fc2(torch.relu(self.fc1(h.flatten(1))))


class RowGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru, self.head = nn.GRU(8, 32, batch_first=True), nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.gru(x.reshape(x.shape[0], 8, 8))[1][-1])


@pytest.fixture(scope="module")
def trained_like():
    """A ResidualCNN whose weights and statistics are far from any initialisation, as after training."""
    torch.manual_seed(0)
    model = ResidualCNN().eval()
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 2.0)
    return model


def test_thinned_model_has_the_target_parameter_count_and_the_output_width(trained_like):
    target = int(0.3 * count_params(trained_like))
    architecture = thinned_architecture(trained_like, EXAMPLE)
    width = architecture.matching_width(target)
    small = architecture(width)
    assert abs(count_params(small) - target) <= 0.05 * target
    before, after = layer_widths(trained_like), layer_widths(small)
    assert after["fc2"] == 10 and small(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    for name in ("stem.0", "block.0", "block.3", "fc1"):  # one ratio everywhere, residual partners together
        assert abs(after[name] - before[name] * width) < 1, name


def test_thinned_model_is_reinitialised_not_a_slice_of_the_trained_one(trained_like):
    torch.manual_seed(0)
    small = thinned_architecture(trained_like, EXAMPLE)(0.5)
    sliced = thin_uniformly(trained_like, EXAMPLE, 0.5)  # the same architecture, trained weights kept
    for (name, fresh), (_, kept) in zip(small.state_dict().items(), sliced.state_dict().items()):
        assert fresh.shape == kept.shape
        if fresh.is_floating_point():
            assert not torch.isclose(fresh, kept).any(), name  # every value redrawn, statistics reset
    assert torch.equal(small.stem[1].running_var, torch.ones(16))


def test_recurrent_layers_lose_hidden_units_and_the_head_keeps_its_outputs():
    small = thin_uniformly(RowGRU(), EXAMPLE, 0.5)
    assert small.gru.hidden_size == 16 and small.head.in_features == 16 and small.head.out_features == 10


def test_a_target_below_the_thinnest_model_has_no_width(trained_like):
    assert thinned_architecture(trained_like, EXAMPLE).matching_width(50) is None


def test_a_model_whose_only_layer_makes_the_outputs_cannot_be_thinned():
    with pytest.raises(UserError, match="cannot thin Sequential uniformly: no Linear, conv or recurrent layer can lose a channel"):
        thinned_architecture(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), EXAMPLE)


def test_a_parameter_no_module_resets_is_refused_by_name():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(10))
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) * self.gain

    with pytest.raises(UserError, match="nothing re-initialises parameter 'gain' .*give Scaled a reset_parameters"):
        reinitialise(Scaled())
    outer = nn.ModuleDict({"body": Scaled()})
    with pytest.raises(UserError, match="nothing re-initialises parameter 'body.gain'"):
        reinitialise(outer)
