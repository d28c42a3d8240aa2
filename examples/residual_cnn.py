"""A residual + depthwise CNN with batch-norm for the 8x8 digits, written as a user would write their own model.

Nothing in edgecompress knows it: it loads as file.py:function, and `sweep` compares its pruned points with
its own architecture thinned uniformly and trained from scratch (issue 18; BENCHMARKS.md, "your own model").

    edgecompress inspect examples/residual_cnn.py:residual_cnn --input-shape 1,1,8,8
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualCNN(nn.Module):
    """stem conv 1->32, a depthwise-separable residual block, conv 32->64, fc 256->128->10 (54,698 parameters)."""

    def __init__(self, channels: int = 32, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels),
        )
        self.expand = nn.Sequential(nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.BatchNorm2d(2 * channels), nn.ReLU())
        self.fc1, self.fc2 = nn.Linear(2 * channels * 4, 128), nn.Linear(128, num_classes)

    def forward(self, x):
        h = self.stem(x)
        h = torch.max_pool2d(torch.relu(h + self.block(h)), 2)
        h = torch.max_pool2d(self.expand(h), 2)
        return self.fc2(torch.relu(self.fc1(h.flatten(1))))


def residual_cnn() -> nn.Module:
    return ResidualCNN()
