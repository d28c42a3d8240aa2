"""The honest question: does a smaller dense model with as many parameters do as well as the pruned one?

For a target parameter count we shrink the architecture's widths (its factory takes a `width` factor) until
its dense parameter count matches the pruned model's non-zero count, train it from scratch with the same
budget the pruned model had (baseline training plus fine-tuning), and score it like every other point.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params


def matching_width(factory: Callable[[float], nn.Module], target_params: int, tolerance: float = 0.02) -> float:
    """Largest width factor whose model has at most `target_params` parameters (bisection on the width).

    >>> from edgecompress.core.models import DigitsCNN
    >>> round(matching_width(DigitsCNN, 13_706), 2)
    0.5
    """
    low, high = 0.0, 1.0
    if count_params(factory(1.0)) <= target_params:
        return 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if count_params(factory(middle)) <= target_params:
            low = middle
        else:
            high = middle
        if high - low < tolerance / 10:
            break
    if low == 0.0:
        raise UserError(f"dense baseline: no width of the architecture has as few as {target_params} parameters")
    return low
