"""The built-in digits task: sklearn's load_digits, shipped offline with scikit-learn.

Pixels are scaled by 1/16 to [0, 1]; the split is `train_test_split(test_size=0.2, stratify=y,
random_state=0)`, and the test split only scores models.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from edgecompress.core.tasks.task import Metric, Task


def accuracy_percent(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * (outputs.argmax(dim=1) == targets).double().mean().item()


ACCURACY = Metric("accuracy", accuracy_percent, higher_is_better=True, unit="%")


def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test); x of shape (N, 1, 8, 8) float32 in [0, 1]."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return x_train, y_train, x_test, y_test


def digits_task(seed: int = 0, batch_size: int = 32) -> Task:
    """The digits classification task.

    The training loader shuffles with torch's global generator, which every pipeline stage reseeds when it
    starts; so a stage's batches depend only on the seed, not on what ran before it (resume needs that).
    `seed` is accepted for the task-factory signature; the split itself is fixed.
    """
    x_train, y_train, x_test, y_test = digits_split()
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
    test = DataLoader(TensorDataset(x_test, y_test), batch_size=256, shuffle=False)
    return Task("digits", train, test, ACCURACY)
