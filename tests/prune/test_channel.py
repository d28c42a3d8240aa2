import pytest
import torch

import edgecompress as ec
from edgecompress.core.errors import UserError
from edgecompress.core.models import DigitsCNN


def prune_channels(model, example_input, amount, keep=()):
    """Channel removal the way a user calls it: `apply` with a Prune config (magnitude, layer scope)."""
    return ec.apply(model, ec.Prune(pattern=ec.Channels(), amount=amount, keep=keep), example_input=example_input)


def test_half_the_channels_are_physically_removed_and_the_classifier_kept(example_input):
    model = prune_channels(DigitsCNN(), example_input, amount=0.5)
    assert (model.conv1.out_channels, model.conv2.in_channels, model.conv2.out_channels) == (16, 16, 32)
    assert (model.fc1.in_features, model.fc1.out_features, model.fc2.out_features) == (128, 64, 10)
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_lowest_norm_channels_are_the_ones_removed(example_input):
    torch.manual_seed(0)
    model = DigitsCNN()
    with torch.no_grad():
        model.conv1.weight.mul_(0.01)
        model.conv1.weight[[3, 7]] *= 1000  # two clearly dominant filters must survive
    kept = model.conv1.weight[[3, 7]].detach().clone()
    model = prune_channels(model, example_input, amount=0.5, keep=("conv2", "fc1"))
    survivors = model.conv1.weight
    assert any(torch.equal(survivors[i], kept[0]) for i in range(len(survivors)))
    assert any(torch.equal(survivors[i], kept[1]) for i in range(len(survivors)))


def test_keep_patterns_leave_layers_untouched(example_input):
    model = prune_channels(DigitsCNN(), example_input, amount=0.5, keep=("conv*",))
    assert model.conv1.out_channels == 32 and model.conv2.out_channels == 64
    assert model.fc1.out_features == 64


def test_invalid_amount_and_nothing_to_prune_are_user_errors(example_input):
    with pytest.raises(ValueError, match="amount"):
        prune_channels(DigitsCNN(), example_input, amount=1.0)
    with pytest.raises(UserError, match="no layer left to prune"):
        prune_channels(DigitsCNN(), example_input, amount=0.5, keep=("*",))


def test_round_to_keeps_channel_counts_multiples_of_eight_and_removes_at_least_the_amount(example_input):
    from edgecompress.orchestration.pipeline.stages import Prune
    from edgecompress.techniques.prune.engine import prune_model

    def pruned(**settings):
        model = DigitsCNN()
        prune_model(model, Prune(**{"pattern": "channel", "amount": 0.3, **settings}), example_input, train=lambda *a, **k: None,
                    batches=None, loss_fn=None, seed=0)
        return model.conv1.out_channels, model.conv2.out_channels, model.fc1.out_features

    assert pruned() == (22, 44, 89)  # 30% of 32, 64, 128 removed: counts the CPU kernels handle slowly
    assert pruned(round_to=8) == (16, 40, 88)  # kept counts rounded down to multiples of 8
    assert pruned(round_to=8, amount=0.95) == (8, 8, 8)  # never fewer than one multiple
    with pytest.raises(ValueError, match="round_to applies to pattern channel only"):
        Prune(pattern="unstructured", round_to=8)
