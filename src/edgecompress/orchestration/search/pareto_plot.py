"""pareto.png: `fit`'s candidates by size and metric change, the Pareto front, the chosen one and the budgets."""

from __future__ import annotations

from pathlib import Path

import matplotlib.ticker

from edgecompress.orchestration.search.pareto import FitResult
from edgecompress.reporting.plotting.canvas import figure


def plot_pareto(path: Path, result: FitResult, metric: str) -> None:
    """Draw the candidates of `result` into `path`; `metric` names the task's metric on the y axis."""
    targets = result.targets
    with figure(path, width=6.5, height=4.0) as (fig, (ax,)):
        for number, c in enumerate(result.candidates, start=1):
            marker = "*" if c is result.chosen else ("o" if c.label in result.pareto else "x")
            label = f"{number}. {c.label} ({c.latency_ratio:.2f}x latency)"
            ax.scatter(c.size_bytes / 1000, -c.drop, marker=marker, s=140 if marker == "*" else 40, label=label)
            ax.annotate(str(number), (c.size_bytes / 1000, -c.drop), fontsize=8, xytext=(4, 4), textcoords="offset points")
        if targets.max_bytes is not None:
            ax.axvline(targets.max_bytes / 1000, color="#d62728", linestyle="--", linewidth=1, label="max size")
        if targets.max_drop is not None:
            ax.axhline(-targets.max_drop, color="#ff7f0e", linestyle="--", linewidth=1, label="max drop")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel(f"{targets.size_of} size (KB)")
        ax.set_ylabel(f"{metric} change vs baseline")
        ax.set_title("candidates (o: Pareto front, *: chosen)")
        ax.legend(fontsize=7, loc="lower right")
