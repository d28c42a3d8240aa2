import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from edgecompress.core.tasks.digits import ACCURACY, digits_split
from edgecompress.core.tasks.task import Task


@pytest.fixture(scope="module")
def small_task():
    """A few digits batches: enough to exercise data-driven criteria and schedules quickly."""
    x_train, y_train, x_test, y_test = digits_split()
    generator = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(x_train[:128], y_train[:128]), batch_size=32, shuffle=True, generator=generator)
    test = DataLoader(TensorDataset(x_test, y_test), batch_size=256)
    return Task("digits-small", train, test, ACCURACY)
