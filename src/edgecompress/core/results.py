"""What a sweep measured: its points, their latencies and the result, as plain data.

They live here, below orchestration and reporting, because the sweep produces them and the report reads them
(the report may not import the sweep).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

NOISY_SPREAD = 0.2  # interquartile range over median above which a latency is called noisy
FROM_SCRATCH = "-from-scratch"  # method suffix: that method's pruned architecture, trained from random weights


@dataclass(frozen=True)
class SweepPoint:
    method: str
    level: float
    finetuned: bool
    score: float
    params: int
    nonzero_params: int
    artifact_bytes: int
    storage_bytes: int

    @property
    def key(self) -> str:
        return point_key(self.method, self.level, self.finetuned)


def point_key(method: str, level: float, finetuned: bool) -> str:
    return f"{method}-{level:g}-{'ft' if finetuned else 'raw'}"


@dataclass(frozen=True)
class PointLatency:
    batch: int
    median_ms: float
    p25_ms: float
    p75_ms: float
    ratio_to_baseline: float

    @property
    def noisy(self) -> bool:
        """Repeats varied by more than 20% of the median (interquartile range): do not trust small differences."""
        return (self.p75_ms - self.p25_ms) > NOISY_SPREAD * self.median_ms


@dataclass
class SweepResult:
    baseline: SweepPoint
    points: list[SweepPoint]
    sweet_spots: dict[str, SweepPoint | None]
    tolerance: float
    dense_comparison: list[dict] = field(default_factory=list)
    latencies: dict[str, PointLatency] = field(default_factory=dict)
    scratch_comparison: list[dict] = field(default_factory=list)  # channel points: fine-tuned vs from scratch

    def to_json(self) -> dict:
        return {
            "baseline": asdict(self.baseline),
            "tolerance": self.tolerance,
            "sweet_spots": {m: (asdict(p) if p else None) for m, p in self.sweet_spots.items()},
            "smaller_dense_comparison": self.dense_comparison,
            "from_scratch_comparison": self.scratch_comparison,
            "points": [asdict(p) for p in self.points],
        }
