"""pareto.png: `fit`'s candidates by size and metric drop, the Pareto front, the chosen one and the budgets.

The y axis is the drop exactly as `fit` prints it (baseline minus candidate for a higher-is-better metric:
positive means worse, so better candidates sit lower). The size axis is logarithmic with plain tick labels
("8 KB", "20 KB"), never 10^4 or 2x10^1.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.ticker

from edgecompress.orchestration.search.pareto import FitResult
from edgecompress.reporting.plotting.canvas import figure

# tick mantissas, sparsest first: the first set giving MIN_TICKS ticks inside the data range is used
_MANTISSAS = ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))
MIN_TICKS = 3
MARGIN = 1.15  # the size axis reaches this factor beyond the smallest and largest point


def plot_pareto(path: Path, result: FitResult, metric: str) -> None:
    """Draw the candidates of `result` into `path`; `metric` names the task's metric on the y axis."""
    targets = result.targets
    sizes = [c.size_bytes for c in result.candidates] + ([targets.max_bytes] if targets.max_bytes is not None else [])
    with figure(path, width=6.5, height=4.0) as (fig, (ax,)):
        for number, c in enumerate(result.candidates, start=1):
            marker = "*" if c is result.chosen else ("o" if c.label in result.pareto else "x")
            label = f"{number}. {c.label} ({c.latency_ratio:.2f}x latency)"
            ax.scatter(c.size_bytes, c.drop, marker=marker, s=140 if marker == "*" else 40, label=label)
            ax.annotate(str(number), (c.size_bytes, c.drop), fontsize=8, xytext=(4, 4), textcoords="offset points")
        if targets.max_bytes is not None:
            ax.axvline(targets.max_bytes, color="#d62728", linestyle="--", linewidth=1, label="max size")
        if targets.max_drop is not None:
            ax.axhline(targets.max_drop, color="#ff7f0e", linestyle="--", linewidth=1, label="max drop")
        ax.axhline(0.0, color="#7f7f7f", linewidth=0.8)
        ax.set_xscale("log")
        low, high = min(sizes) / MARGIN, max(sizes) * MARGIN
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(size_ticks(low, high)))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: size_label(v)))
        ax.set_xlabel(f"{targets.size_of} size (log scale; 1 KB = 1,000 B)")
        ax.set_ylabel(f"{metric} drop vs baseline (lower is better)")
        ax.set_title("candidates, drop as fit prints it (o: Pareto front, *: chosen)")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=7, frameon=False)


def size_ticks(low: float, high: float) -> list[float]:
    """Round byte counts between `low` and `high` for a log axis: at least MIN_TICKS of them, as sparse as allowed.

    >>> size_ticks(9_000, 40_000)
    [10000.0, 15000.0, 20000.0, 30000.0]
    """
    decades = range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
    for mantissas in _MANTISSAS:
        ticks = [_round(m * 10**k) for k in decades for m in mantissas if low <= m * 10**k <= high]
        if len(ticks) >= MIN_TICKS:
            return ticks
    # a range narrower than 1 to 1.2: evenly spaced round numbers, as on a linear axis
    steps = matplotlib.ticker.MaxNLocator(nbins=MIN_TICKS + 1, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    return [_round(t) for t in steps if low <= t <= high]


def _round(value: float) -> float:
    """`value` to 6 significant digits (no 1.4999999 from 1.5 * 10**3)."""
    return float(f"{value:.6g}")


def size_label(n: float) -> str:
    """A tick label for a byte count, 1000-based and plain: 800 B, 8 KB, 1.5 MB."""
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:.4g} B"
