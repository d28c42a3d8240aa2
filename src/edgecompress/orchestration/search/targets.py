"""What `fit` must meet, parsed and validated before any training: --max-size, --max-latency, --max-drop, --size-of.

>>> check_targets(max_drop=1.0, size_of="packed", max_bytes=10_000).describe()
'size <= 10,000 B (packed), drop <= 1'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Protocol

from edgecompress.core.errors import UserError
from edgecompress.orchestration.search.fit_trials import LATENCY_BATCH


class Measured(Protocol):
    """What the targets are checked against (a candidate's numbers; see `pareto.Candidate`)."""

    size_bytes: int
    drop: float
    latency_ms: float
    latency_ratio: float

_LATENCY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(x|ms|us)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Targets:
    """What a fitted model must meet; None means no limit. A latency limit is a ratio to the baseline's
    batch-256 latency in the same run (`latency_ratio`, e.g. 0.5) or absolute milliseconds (`latency_ms`)."""

    max_bytes: int | None = None
    max_drop: float | None = None
    latency_ratio: float | None = None
    latency_ms: float | None = None
    size_of: str = "packed"

    def missed(self, c: Measured) -> list[str]:
        """The targets `c` misses, by name: size, latency, drop."""
        over = {
            "size": self.max_bytes is not None and c.size_bytes > self.max_bytes,
            "latency": (self.latency_ratio is not None and c.latency_ratio > self.latency_ratio)
            or (self.latency_ms is not None and c.latency_ms > self.latency_ms),
            "drop": self.max_drop is not None and c.drop > self.max_drop,
        }
        return [name for name, missed in over.items() if missed]

    def overshoot(self, c: Measured) -> float:
        """How far `c` is from the budgets: the largest of value / limit over the size and latency targets."""
        ratios = [1.0]
        if self.max_bytes is not None:
            ratios.append(c.size_bytes / self.max_bytes)
        if self.latency_ratio is not None:
            ratios.append(c.latency_ratio / self.latency_ratio)
        if self.latency_ms is not None:
            ratios.append(c.latency_ms / self.latency_ms)
        return max(ratios)

    def describe(self) -> str:
        parts = []
        if self.max_bytes is not None:
            parts.append(f"size <= {self.max_bytes:,} B ({self.size_of})")
        if self.latency_ratio is not None:
            parts.append(f"latency <= {self.latency_ratio:g}x the baseline's at batch {LATENCY_BATCH}")
        if self.latency_ms is not None:
            parts.append(f"latency <= {self.latency_ms:g} ms at batch {LATENCY_BATCH}")
        if self.max_drop is not None:
            parts.append(f"drop <= {self.max_drop:g}")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return dict(self.__dict__, latency_batch=LATENCY_BATCH)


def parse_latency(text: str | float) -> tuple[float | None, float | None]:
    """`--max-latency`: '0.5' or '0.5x' is a ratio to the baseline; '0.3ms' or '300us' is absolute.

    Returns (ratio, milliseconds), one of them None.

    >>> parse_latency("0.5"), parse_latency("300us")
    ((0.5, None), (None, 0.3))
    """
    match = _LATENCY.match(str(text))
    if not match or not 0 < float(match.group(1)) < math.inf:
        shown = str(text) if len(str(text)) <= 40 else str(text)[:40] + "..."
        raise UserError(
            f"--max-latency: cannot use {shown!r}; give a positive ratio to the baseline's batch-{LATENCY_BATCH} "
            "latency (0.5 or 0.5x) or an absolute time (0.3ms, 300us)"
        )
    value, unit = float(match.group(1)), (match.group(2) or "x").lower()
    if unit == "x":
        return value, None
    return None, value / 1000 if unit == "us" else value


def check_targets(
    max_drop: float | None, size_of: str, max_bytes: int | None = None, max_latency: str | float | None = None
) -> Targets:
    """Validate the targets up front (the CLI calls this before it spends a minute training).

    A size or latency budget is required: fitting means fitting into something; --max-drop bounds the loss.
    """
    if size_of not in ("packed", "onnx"):
        raise UserError(f"--size-of: must be packed or onnx, got {size_of!r}")
    if max_drop is not None and not 0 <= max_drop < math.inf:
        raise UserError(f"--max-drop: must be >= 0 and finite, got {max_drop}")
    if max_bytes is None and max_latency is None:
        raise UserError("Missing option '--max-size' or '--max-latency': give a budget to fit into, e.g. --max-size 10KB or --max-latency 0.5")
    if max_bytes is not None and max_bytes <= 0:
        raise UserError(f"--max-size: must be positive, got {max_bytes}")
    ratio, ms = parse_latency(max_latency) if max_latency is not None else (None, None)
    return Targets(max_bytes, max_drop, ratio, ms, size_of)
