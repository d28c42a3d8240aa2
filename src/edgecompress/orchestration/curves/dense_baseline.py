"""The honest question: does a smaller dense model with as many parameters do as well as the pruned one?

For a target parameter count we shrink the architecture's widths until its dense parameter count matches the
pruned model's non-zero count, train it from scratch with the same budget the pruned model had (baseline
training plus fine-tuning), and score it like every other point. The widths come from the architecture's own
factory when it has one (the built-in digits models take a `width` factor), else from thinning the user's
model itself: every layer loses the same fraction of its channels (`ThinnedArchitecture`).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.core.measure.params import count_params
from edgecompress.core.models.reinitialise import check_reinitialisable, reinitialise
from edgecompress.techniques.prune.uniform import layer_widths, thin_uniformly, thinned_layers

WIDTH_PRECISION = 0.002  # searches stop when the width is known this closely (a channel of a 500-wide layer)
MAX_EXCESS = 0.05  # a thinned model may have this share more parameters than the pruned one, when it is closer


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


@dataclass(frozen=True)
class ThinnedArchitecture:
    """Width -> `model`'s own architecture with every layer keeping that share of its channels, re-initialised.

    A factory like the built-in models' `width` argument, for any model; make it with `thinned_architecture`,
    which checks the model first. Calling it draws fresh weights from torch's generator (seed it first).

    >>> small = thinned_architecture(model, example)(0.5)  # doctest: +SKIP
    """

    model: nn.Module
    example: torch.Tensor
    thinned: tuple[str, ...]  # the layers that lose channels (not the outputs, nor what is coupled to them)

    def __call__(self, width: float) -> nn.Module:
        with one_thread():
            return reinitialise(thin_uniformly(self.model, self.example, width))

    def params(self, width: float) -> int | None:
        """Parameters at `width`; None when it is too thin for some layer to keep a channel (Torch-Pruning
        would leave that layer whole, so the model would not be uniformly thinned)."""
        thin = thin_uniformly(self.model, self.example, width)
        if width < 0.5:  # every thinned layer keeps a channel at half width: it lost one there
            before, after = layer_widths(self.model), layer_widths(thin)
            if any(after[name] == before[name] for name in self.thinned):
                return None
        return count_params(thin)

    def matching_width(self, target_params: int) -> float | None:
        """The width whose parameter count is closest to `target_params` (bisection): at most it, or above it
        by at most MAX_EXCESS; None if even the thinnest uniform model has more.

        Channel counts are whole, so a small model's parameter count moves in steps of several percent: the
        closer of the two widths around the target is taken, and the comparison row gives both counts.

        >>> round(thinned_architecture(DigitsCNN(), torch.zeros(1, 1, 8, 8)).matching_width(13_706), 2)  # doctest: +SKIP
        0.5
        """
        if count_params(self.model) <= target_params:
            return 1.0
        with one_thread():
            return self._search(target_params)

    def _search(self, target_params: int) -> float | None:
        low, high = 0.0, 1.0
        below, above = None, (1.0, count_params(self.model))  # (width, params) on each side of the target
        before = layer_widths(self.model)
        thinnest = 1.001 / min(before[name] for name in self.thinned)  # every thinned layer keeps one channel
        params = self.params(thinnest) if thinnest < 1.0 else None
        if params is not None and params > target_params * (1 + MAX_EXCESS):
            return None  # the thinnest uniform model is already too large
        if params is not None:
            low, below = thinnest, (thinnest, params)
        while high - low > WIDTH_PRECISION:
            middle = (low + high) / 2
            params = self.params(middle)
            if params is None:
                low = middle
            elif params <= target_params:
                low, below = middle, (middle, params)
            else:
                high, above = middle, (middle, params)
        sides = [side for side in (below, above) if side is not None and side[1] <= target_params * (1 + MAX_EXCESS)]
        return min(sides, key=lambda side: abs(side[1] - target_params))[0] if sides else None


def thinned_architecture(model: nn.Module, example: torch.Tensor) -> ThinnedArchitecture:
    """`model`'s architecture as a width factory; a UserError, before any training, if it cannot be thinned
    (Torch-Pruning cannot trace it, or every layer makes its outputs) or re-initialised."""
    with one_thread():
        thinned = thinned_layers(model, example)
    check_reinitialisable(model)
    return ThinnedArchitecture(model, example, tuple(thinned))


@contextmanager
def one_thread():
    """Torch on one thread inside: thinning traces a one-sample example through small layers, which two threads
    on a busy 2-core machine ran 20-100x slower (each convolution waited ~25-50 ms for the other thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def dense_width(factory: Callable[[float], nn.Module], target_params: int) -> float | None:
    """The width of `factory`'s architecture matching `target_params` (a factory's: the widest with at most
    that many; a thinned architecture's: the closest, see `ThinnedArchitecture.matching_width`), or None if
    no width has so few."""
    if isinstance(factory, ThinnedArchitecture):
        return factory.matching_width(target_params)
    try:
        return matching_width(factory, target_params)
    except UserError:
        return None


def thinning_refusal(model: nn.Module, example: torch.Tensor) -> str | None:
    """Why `model` can have no thinned smaller dense models, or None: the command line asks before training
    and goes on without them, since it compares by default."""
    try:
        thinned_architecture(model, example)
    except UserError as exc:
        return str(exc)
    return None
