"""Schedules: when pruning happens relative to training.

- oneshot: one step to the target.
- iterative: `steps` rounds of (prune, fine-tune `epochs`), sparsity growing geometrically so that each
  round removes the same fraction of what is left: s_k = 1 - (1 - s)^(k/n).
- gradual: Zhu & Gupta (2017), masks updated `steps` times during `epochs` of training with
  s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3, s_i = 0; pruning spans the first 60% of the steps and the
  rest recovers at the final sparsity.
"""

from __future__ import annotations

from typing import Callable

from edgecompress.techniques.prune.scoring import MovementTracker

GRADUAL_START, GRADUAL_END = 0.0, 0.6

Step = Callable[[float], None]  # prune to this fraction of the target sparsity


def oneshot(job, step: Step) -> None:
    step(1.0)


def iterative(job, step: Step) -> None:
    n = job.config.steps
    callbacks = _movement_callbacks(job)
    if callbacks:  # movement needs training before it can score
        job.train(job.config.epochs, callbacks=callbacks)
    for k in range(1, n + 1):
        step(geometric_fraction(k, n, job.config.amount))
        job.train(job.config.epochs, callbacks=callbacks)


def geometric_fraction(k: int, n: int, amount: float) -> float:
    """Fraction of the target after round k of n when each round removes the same share of what is left."""
    if k >= n or amount <= 0:
        return 1.0
    return (1 - (1 - amount) ** (k / n)) / amount


def cubic_fraction(update: int, updates: int) -> float:
    """Fraction of the final sparsity after `update` of `updates` mask updates (Zhu & Gupta, s_i = 0)."""
    return 1.0 - (1.0 - update / updates) ** 3


class GradualPruner:
    """Training callback that updates the masks at the cubic schedule's steps."""

    def __init__(self, step: Step, total_steps: int, updates: int, start_step: int = 0):
        self.step = step
        self.updates = updates
        span = max(1, int(GRADUAL_END * total_steps) - start_step)
        self.at = {start_step + round(span * k / updates): k for k in range(1, updates + 1)}
        self.done = 0

    def after_step(self, step: int) -> None:
        k = self.at.get(step)
        if k is not None and k > self.done:
            self.done = k
            self.step(cubic_fraction(k, self.updates))

    def finish(self) -> None:
        if self.done < self.updates:  # too few training steps to reach every update point
            self.done = self.updates
            self.step(1.0)


def gradual(job, step: Step) -> None:
    total = job.config.epochs * _count(job.scores.batches)
    start = max(1, int(0.1 * total)) if job.config.criterion.needs_training else int(GRADUAL_START * total)
    pruner = GradualPruner(step, total, job.config.steps, start)
    job.train(job.config.epochs, callbacks=[*_movement_callbacks(job), pruner])
    pruner.finish()


def _movement_callbacks(job) -> list:
    if not job.config.criterion.needs_training:  # movement: scores accumulate while training
        return []
    return [MovementTracker(job.layers, job.scores.movement)]


SCHEDULES: dict[str, Callable] = {"oneshot": oneshot, "iterative": iterative, "gradual": gradual}


def _count(batches) -> int:
    try:
        return len(batches)
    except TypeError:  # a plain iterable: count one pass
        return sum(1 for _ in batches)
