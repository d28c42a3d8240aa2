"""How far a run's speedups can be trusted: an interval from the repeats' quartiles, and a noise verdict.

One ratio of medians hides how much the repeats varied: on a loaded machine one command gave batch-256
"speedups" from 2.4x to 19x. So a speedup is shown as the interval from the quartiles (baseline p25 / final
p75 to baseline p75 / final p25), and the latency is called noisy when the repeats of either model spread
widely or the machine had more runnable work than CPUs while it was timed; a noisy speedup is never headlined.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from edgecompress.core.results import NOISY_SPREAD
from edgecompress.runtime.latency import Latency


def machine_load() -> tuple[float | None, int]:
    """The 1-minute load average (None where the OS has none) and the CPUs this process may use."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return load, cpus


@dataclass(frozen=True)
class Speedup:
    """baseline latency / final latency at one batch size, with its interval and whether it is trustworthy."""

    batch: int
    median: float
    low: float  # baseline p25 / final p75: the slow end
    high: float  # baseline p75 / final p25: the fast end
    reasons: tuple[str, ...]  # why the latency is noisy; empty when it is not

    @property
    def noisy(self) -> bool:
        return bool(self.reasons)

    @property
    def interval(self) -> str:
        return f"{self.low:.2f}x-{self.high:.2f}x"

    def headline(self) -> str:
        """The words for a report's headline: an interval when it is clear, never one ratio it cannot support."""
        if self.noisy:
            return (f"batch-{self.batch} speed not headlined: latency noisy ({'; '.join(self.reasons)}), "
                    f"speedup somewhere in {self.interval}; time it again on a quiet machine")
        if self.low >= 1:
            return f"{self.interval} faster at batch {self.batch}"
        if self.high <= 1:
            return f"{1 / self.high:.2f}x-{1 / self.low:.2f}x slower at batch {self.batch}"
        return f"no clear speed change at batch {self.batch} ({self.interval})"


def speedup(base: Latency, final: Latency, batch: int, load: float | None, cpus: int) -> Speedup:
    """The speedup of `final` over `base` (timed interleaved in one run) and the reasons to distrust it.

    >>> speedup(Latency(1.0, 0.95, 1.05, 50), Latency(0.5, 0.48, 0.52, 50), 256, 0.9, 2).interval
    '1.83x-2.19x'
    """
    reasons = []
    spread = max(base.spread, final.spread)
    if spread > NOISY_SPREAD:
        reasons.append(f"repeats spread over {spread:.0%} of the median")
    if load is not None and load > cpus:
        reasons.append(f"load average {load:.1f} on {cpus} CPU{'s' if cpus > 1 else ''}")
    ratio = base.median_ms / final.median_ms if final.median_ms else float("inf")
    low = base.p25_ms / final.p75_ms if final.p75_ms else float("inf")
    high = base.p75_ms / final.p25_ms if final.p25_ms else float("inf")
    return Speedup(batch, ratio, low, high, tuple(reasons))
