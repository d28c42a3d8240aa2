"""A KxK convolution as two thinner ones: KxK with `rank` output channels, then 1x1 to the original outputs.

This is the truncated SVD of the kernel seen as a matrix (out x in*K*K): the first convolution holds the
right singular vectors (each a KxK filter over all inputs), the second mixes the `rank` results into the
outputs. It holds rank (in*K*K + out) weights instead of out*in*K*K, runs as two ordinary convolutions in any
runtime, and is exact at full rank. (Tucker-2 would also thin the input side with a 1x1 convolution first;
the two-convolution form needs one SVD and no iterative fitting.)
"""

from __future__ import annotations

import torch
from torch import nn


def conv_matrix(conv: nn.Conv2d) -> torch.Tensor:
    """The kernel as the (out x in*K*K) matrix the factorization approximates."""
    return conv.weight.detach().reshape(conv.out_channels, -1)


def factorize_conv(conv: nn.Conv2d, rank: int) -> nn.Sequential:
    """Two convolutions whose composition is the best rank-`rank` approximation of `conv` (bias on the second).

    >>> pair = factorize_conv(nn.Conv2d(8, 16, 3, padding=1), rank=4)
    >>> [tuple(p.weight.shape) for p in pair]
    [(4, 8, 3, 3), (16, 4, 1, 1)]
    """
    if conv.groups != 1 or conv.padding_mode != "zeros":
        raise ValueError("only ungrouped, zero-padded convolutions can be factorized")
    u, s, vh = torch.linalg.svd(conv_matrix(conv).double(), full_matrices=False)
    root = s[:rank].sqrt()
    first = nn.Conv2d(conv.in_channels, rank, conv.kernel_size, conv.stride, conv.padding, conv.dilation, bias=False)
    second = nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None)
    with torch.no_grad():
        first.weight.copy_((root[:, None] * vh[:rank]).reshape(first.weight.shape).to(conv.weight.dtype))
        second.weight.copy_((u[:, :rank] * root[None, :]).reshape(second.weight.shape).to(conv.weight.dtype))
        if conv.bias is not None:
            second.bias.copy_(conv.bias)
    return nn.Sequential(first, second)
