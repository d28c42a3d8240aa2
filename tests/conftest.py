"""Shared fixtures: one real demo run per test session (about 15 s), and small trained models."""

from __future__ import annotations

import json

import pytest
import torch

from edgecompress.core.models import DigitsCNN, DigitsMLP
from edgecompress.core.seeding import seed_everything
from edgecompress.core.tasks.digits import digits_task
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.demo import run_demo


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The real `edgecompress demo` pipeline, run once; tests read its outputs."""
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, seed=0)
    metrics = json.loads((out / "metrics.json").read_text())
    return result, metrics


@pytest.fixture(scope="session")
def digits():
    return digits_task(seed=0)


def _briefly_trained(factory, task):
    """5 seeded epochs: not demo quality, enough for behaviour tests."""
    seed_everything(0)
    model = factory()
    train_epochs(model, task, epochs=5, lr=2e-3)
    return model.eval()


@pytest.fixture(scope="session")
def trained_cnn(digits):
    return _briefly_trained(DigitsCNN, digits)


@pytest.fixture(scope="session")
def trained_mlp(digits):
    return _briefly_trained(DigitsMLP, digits)


@pytest.fixture
def example_input():
    return torch.zeros(1, 1, 8, 8)


@pytest.fixture(scope="session")
def small_digits_task():
    """Four digits batches: enough to exercise training loops quickly."""
    from torch.utils.data import DataLoader, TensorDataset

    from edgecompress.core.tasks.digits import ACCURACY, digits_split
    from edgecompress.core.tasks.task import Task

    x_train, y_train, x_test, y_test = digits_split()
    train = DataLoader(TensorDataset(x_train[:128], y_train[:128]), batch_size=32, shuffle=True)
    test = DataLoader(TensorDataset(x_test, y_test), batch_size=256)
    return Task("digits-small", train, test, ACCURACY)
