"""Mixed precision that fixes drops: keep the layers int8 hurts most in float until the metric is within tolerance.

Layers are ranked by their own output SQNR under simulated int8 (`layer_error.py`), worst first; each round
quantizes again with one more of them left in float and scores the result in ONNX Runtime. The decision data
is the task's validation data (its training data if it has none), never the evaluation set that reports.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn

from edgecompress.core.errors import UserError
from edgecompress.techniques.quantize.layer_error import LayerError, layer_quantization_error


@dataclass
class MixedPrecisionReport:
    """What was kept in float and why; scores are on the decision data."""

    reference_score: float
    final_score: float
    tolerance: float | None
    sqnr_db: dict[str, float] = field(default_factory=dict)
    kept_float: list[str] = field(default_factory=list)
    attempts: list[dict] = field(default_factory=list)
    within_tolerance: bool = True

    def to_json(self) -> dict:
        return {
            "reference_score": self.reference_score,
            "final_score": self.final_score,
            "tolerance": self.tolerance,
            "within_tolerance": self.within_tolerance,
            "kept_float": self.kept_float,
            "layer_sqnr_db": self.sqnr_db,
            "attempts": self.attempts,
        }


def explicit_float_layers(model: nn.Module, patterns: tuple[str, ...]) -> list[str]:
    """Layers named by `keep_float` patterns; a pattern matching no weighted layer is a user error."""
    names = [n for n, m in model.named_modules() if isinstance(getattr(m, "weight", None), nn.Parameter) or hasattr(m, "parametrizations")]
    chosen = []
    for pattern in patterns:
        matches = [n for n in names if fnmatch.fnmatch(n, pattern)]
        if not matches:
            raise UserError(f"quantize.keep_float: pattern {pattern!r} matches no layer; layers are: {', '.join(names)}")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def quantize_within_tolerance(
    model: nn.Module,
    quantize: Callable[[tuple[str, ...]], Path],
    score: Callable[[Path], float],
    reference_score: float,
    higher_is_better: bool,
    batches,
    tolerance: float | None,
    keep_float: list[str],
) -> MixedPrecisionReport:
    """Quantize with `keep_float` layers in float, then keep adding the worst layer until within `tolerance`.

    `quantize(weight_names)` writes the model with those weights' layers left in float and returns its path.
    """
    ranking: list[LayerError] = layer_quantization_error(model, batches)
    report = MixedPrecisionReport(reference_score, reference_score, tolerance, {e.name: e.sqnr_db for e in ranking})
    kept = list(keep_float)
    candidates = [e.name for e in ranking if e.name not in kept]
    while True:
        path = quantize(tuple(f"{name}.weight" for name in kept))
        value = score(path)
        drop = (reference_score - value) if higher_is_better else (value - reference_score)
        report.attempts.append({"kept_float": list(kept), "score": value, "drop": drop})
        report.final_score, report.kept_float = value, list(kept)
        if tolerance is None or drop <= tolerance:
            report.within_tolerance = True
            return report
        if not candidates:
            report.within_tolerance = False
            return report
        kept.append(candidates.pop(0))
