"""Shared fixtures: one real demo run per test session (about 15 s), and small trained models.

The suite runs on two pytest-xdist workers (`make test`: `-n 2 --dist loadgroup`), so each test process uses one
torch thread, and so do the command-line runs the tests start (they inherit OMP_NUM_THREADS). Two workers with
two threads each on 2 cores spend most of their time waiting for each other's threads (3 digits epochs: 4 s on
one thread, 14-45 s on two beside another busy process); one thread also gives every run of the suite the same
float sums whatever the machine's core count (docs: DEVELOPERS.md).
"""

from __future__ import annotations

import json
import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported; inherited by every subprocess a test starts
os.environ["MKL_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from edgecompress.core.models import DigitsCNN, DigitsMLP
from edgecompress.core.seeding import seed_everything
from edgecompress.core.tasks.digits import digits_task
from edgecompress.core.train import train_epochs
from edgecompress.orchestration.demo import run_demo
from tests.work_units import assign_units, pytest_configure_node, pytest_unconfigure, pytest_xdist_make_scheduler  # noqa: F401

torch.set_num_threads(1)  # in case a plugin imported torch before this file


def pytest_collection_modifyitems(config, items):
    assign_units(config, items)  # which tests share a worker under `make test` (tests/work_units.py)


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
