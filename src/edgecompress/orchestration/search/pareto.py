"""Choosing among `fit`'s measured candidates: the smallest within every target, the Pareto front of size vs
metric, and the best found (with a plain message) when none fits."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgecompress.orchestration.search.fit_trials import LATENCY_BATCH
from edgecompress.orchestration.search.targets import Targets


@dataclass
class Candidate:
    label: str
    directory: str
    size_bytes: int
    score: float
    drop: float
    latency_ms: float = float("nan")  # median at batch LATENCY_BATCH, ONNX Runtime, one thread
    latency_ratio: float = float("nan")  # latency_ms / the baseline's, timed interleaved in the same run
    fits: bool = False

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class FitResult:
    chosen: Candidate
    met_targets: bool
    message: str
    candidates: list[Candidate] = field(default_factory=list)
    pareto: list[str] = field(default_factory=list)
    targets: Targets | None = None


def choose(results: list[Candidate], targets: Targets, selected_on_eval: bool) -> FitResult:
    """The smallest candidate that meets every target; else the best found, and a message that says so."""
    pareto = [c for c in results if not any(o.size_bytes <= c.size_bytes and o.drop < c.drop or o.size_bytes < c.size_bytes and o.drop <= c.drop for o in results)]
    for c in results:
        c.fits = not targets.missed(c)
    fitting = [c for c in results if c.fits]
    caveat = " (chosen on the evaluation set: no validation data was given, so its numbers are optimistic)" if selected_on_eval else ""
    if fitting:
        chosen = min(fitting, key=lambda c: (c.size_bytes, c.drop))
        message = f"{chosen.label}: {_numbers(chosen, targets)} meets every target ({targets.describe()}){caveat}"
        return FitResult(chosen, True, message, results, [c.label for c in pareto], targets)
    within_budget = [c for c in results if not {"size", "latency"} & set(targets.missed(c))]
    if within_budget:
        chosen = min(within_budget, key=lambda c: (c.drop, c.size_bytes))
        why = "is within the size/latency budget but loses more"
    else:
        chosen = min(results, key=lambda c: (targets.overshoot(c), c.drop))
        why = f"is the closest found to the budget and still misses {' and '.join(targets.missed(chosen))}"
    message = f"no candidate meets {targets.describe()}; best found: {chosen.label} ({_numbers(chosen, targets)}), which {why}{caveat}"
    return FitResult(chosen, False, message, results, [c.label for c in pareto], targets)


def _numbers(c: Candidate, targets: Targets) -> str:
    return (
        f"{c.size_bytes:,} B ({targets.size_of}), latency {c.latency_ratio:.2f}x the baseline's "
        f"({c.latency_ms:.3f} ms at batch {LATENCY_BATCH}), drop {c.drop:+.2f}"
    )
