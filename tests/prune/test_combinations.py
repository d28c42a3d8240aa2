"""Every criterion x pattern x scope x schedule combination that makes sense runs; the others are refused."""

from __future__ import annotations

import itertools

import pytest
import torch
from pydantic import ValidationError

from edgecompress.core.masks import get_mask
from edgecompress.core.models import DigitsCNN
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.engine import prune_model

CRITERIA = ["l1", "l2", "taylor", "wanda", "movement", "random", "custom"]
PATTERNS = ["unstructured", "channel", "block", "nm"]
SCOPES = ["layer", "global"]
SCHEDULES = ["oneshot", "iterative", "gradual"]
COMBINATIONS = list(itertools.product(CRITERIA, PATTERNS, SCOPES, SCHEDULES))


def _config(criterion, pattern, scope, schedule) -> Prune:
    extra = {"layers": ("conv2", "fc1")} if pattern in ("block", "nm") else {}
    if pattern != "nm":
        extra["amount"] = 0.5
    if criterion == "custom":  # the Python function is passed to prune_model; the string only satisfies the schema
        extra["score_fn"] = "unused:placeholder"
    return Prune(criterion=criterion, pattern=pattern, scope=scope, schedule=schedule, steps=2, epochs=1, **extra)


def _own_scores(name, module) -> torch.Tensor:
    """A user's score function: later weights of each layer matter more (any weight-shaped tensor will do)."""
    return torch.arange(module.weight.numel(), dtype=torch.float32).reshape(module.weight.shape)


def _makes_sense(criterion, pattern, scope, schedule) -> bool:
    if pattern == "nm" and scope == "global":
        return False
    if pattern == "channel" and (criterion in ("wanda", "movement", "custom") or schedule == "gradual"):
        return False
    return not (criterion == "movement" and schedule == "oneshot")


def test_combination_count_covers_the_grid():
    sensible = [c for c in COMBINATIONS if _makes_sense(*c)]
    # refused: nm+global 21, channel with wanda/movement/custom 18 or gradual 8, movement one-shot 5
    assert len(COMBINATIONS) == 168 and len(sensible) == 168 - 21 - 26 - 5


@pytest.mark.parametrize("combo", [c for c in COMBINATIONS if _makes_sense(*c)], ids="-".join)
def test_sensible_combination_runs_and_reaches_its_sparsity(combo, small_task):
    criterion, pattern, scope, schedule = combo
    torch.manual_seed(0)
    model = DigitsCNN()

    def train(epochs, callbacks=()):
        train_epochs(model, small_task, epochs, lr=1e-3, callbacks=callbacks)

    prune_model(
        model, _config(*combo), torch.zeros(1, 1, 8, 8), train,
        batches=small_task.train_loader, loss_fn=small_task.loss_fn, seed=0, score_fn=_own_scores,
    )
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    if pattern == "channel":  # removed for real: measured on the new widths, within one channel
        widths, full = [model.conv1.out_channels, model.conv2.out_channels, model.fc1.out_features], [32, 64, 128]
        assert model.fc1.in_features == 4 * widths[1] and model.fc2.out_features == 10
        if scope == "layer":
            assert all(abs(w - f / 2) <= 1 for w, f in zip(widths, full)), widths
        else:
            assert abs(sum(widths) - sum(full) / 2) <= 1, widths
        return
    layers = [model.conv2, model.fc1] if pattern in ("block", "nm") else [model.conv1, model.conv2, model.fc1]
    zeros = sum(int((get_mask(m) == 0).sum()) for m in layers)
    total = sum(m.weight.numel() for m in layers)
    group = 64 if pattern == "block" else 1
    if scope == "global" or pattern == "nm":
        assert abs(zeros - 0.5 * total) <= group
    else:
        for m in layers:
            assert abs(int((get_mask(m) == 0).sum()) - 0.5 * m.weight.numel()) <= group


@pytest.mark.parametrize("combo", [c for c in COMBINATIONS if not _makes_sense(*c)], ids="-".join)
def test_nonsensical_combination_is_refused_with_a_reason(combo):
    with pytest.raises(ValidationError) as info:
        _config(*combo)
    message = str(info.value)
    assert any(word in message for word in ("does not apply", "needs training")), message


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"amount": 1.0}, "less than 1"),
        ({"amount": -0.1}, "greater than or equal to 0"),
        ({"pattern": "nm", "n": 4, "m": 4}, "n must be smaller than m"),
        ({"pattern": "nm", "n": 2, "m": 4, "amount": 0.3}, "fixed at 1 - n/m"),
        ({"criterion": "custom", "pattern": "unstructured"}, "exactly one of score_fn"),
        ({"pattern": "unstructured", "per_layer": {"fc1": 1.5}}, "per_layer amounts must be in"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Prune(**kwargs)
