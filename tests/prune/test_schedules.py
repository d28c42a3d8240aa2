"""Schedules: the sparsity a model has after each update is the one the schedule's formula gives."""

from __future__ import annotations

import pytest
import torch

from edgecompress.core.masks import get_mask
from edgecompress.core.models import DigitsCNN
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.pipeline.stages import Prune
from edgecompress.techniques.prune.engine import prune_model
from edgecompress.techniques.prune.schedules import cubic_fraction, geometric_fraction


def _zeros(module) -> int:
    mask = get_mask(module)
    return 0 if mask is None else int((mask == 0).sum())


def test_cubic_fraction_is_zhu_and_gupta_with_zero_initial_sparsity():
    s_f, n = 0.9, 4
    for t in range(n + 1):  # s_t = s_f + (s_i - s_f)(1 - t/n)^3 with s_i = 0, t0 = 0, dt = 1
        assert s_f * cubic_fraction(t, n) == pytest.approx(s_f + (0 - s_f) * (1 - t / n) ** 3)
    assert cubic_fraction(2, 4) == 0.875


def test_geometric_rounds_remove_the_same_share_of_what_is_left():
    levels = [0.875 * geometric_fraction(k, 3, 0.875) for k in (1, 2, 3)]
    assert levels == pytest.approx([0.5, 0.75, 0.875])


def test_gradual_schedule_raises_sparsity_along_the_cubic_curve_during_training(small_task):
    torch.manual_seed(0)
    model = DigitsCNN()
    seen: list[int] = []

    class Record:
        def after_step(self, step):
            seen.append(_zeros(model.fc1))

    def train(epochs, callbacks=()):  # 4 batches per epoch: 8 steps, updates at steps 1-4 (first 60%)
        train_epochs(model, small_task, epochs, lr=1e-3, callbacks=[*callbacks, Record()])

    config = Prune(pattern="unstructured", criterion="l1", amount=0.9, schedule="gradual", steps=4, epochs=2)
    prune_model(model, config, torch.zeros(1, 1, 8, 8), train, batches=small_task.train_loader)
    expected = [round(0.9 * cubic_fraction(k, 4) * 32768) for k in (1, 2, 3, 4)]
    assert seen == [*expected, expected[-1], expected[-1], expected[-1], expected[-1]]
    assert torch.all(model.fc1.weight[get_mask(model.fc1) == 0] == 0)  # still exactly zero after the last steps


def test_iterative_schedule_prunes_then_fine_tunes_each_round(small_task):
    torch.manual_seed(0)
    model = DigitsCNN()
    before_training: list[int] = []

    def train(epochs, callbacks=()):
        before_training.append(_zeros(model.fc1))
        train_epochs(model, small_task, epochs, lr=1e-3, callbacks=callbacks)

    config = Prune(pattern="unstructured", criterion="l2", amount=0.875, schedule="iterative", steps=3, epochs=1)
    prune_model(model, config, torch.zeros(1, 1, 8, 8), train, batches=small_task.train_loader)
    assert before_training == [round(s * 32768) for s in (0.5, 0.75, 0.875)]
