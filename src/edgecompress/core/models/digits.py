"""The built-in architectures for the 8x8 digits data (sklearn's load_digits)."""

from __future__ import annotations

from torch import nn


class DigitsCNN(nn.Sequential):
    """LeNet-style CNN: conv 1->32 3x3, conv 32->64 3x3, maxpool 2, fc 256->128->10 (53,002 parameters)."""

    def __init__(self, width: float = 1.0, num_classes: int = 10):
        c1, c2, hidden = max(1, round(32 * width)), max(1, round(64 * width)), max(1, round(128 * width))
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c1, c2, 3)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * 2 * 2, hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)


class DigitsMLP(nn.Sequential):
    """LeNet-300-100 shape on 64 pixels: fc 64->300->100->10 (50,610 parameters)."""

    def __init__(self, width: float = 1.0, num_classes: int = 10):
        h1, h2 = max(1, round(300 * width)), max(1, round(100 * width))
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64, h1)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(h1, h2)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(h2, num_classes)
