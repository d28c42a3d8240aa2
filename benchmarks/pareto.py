"""Size-vs-metric Pareto charts for BENCHMARKS.md: every result a point, the non-dominated ones joined."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from edgecompress.storage.files import atomic_write_bytes  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"


def pareto_front(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The points no other point beats on both axes (smaller size, higher metric), by increasing size."""
    front, best = [], float("-inf")
    for point in sorted(points, key=lambda p: (p[1], -p[2])):
        if point[2] > best:
            front.append(point)
            best = point[2]
    return front


def pareto_chart(name: str, points: list[tuple[str, float, float]], x_label: str, y_label: str, title: str) -> str:
    """Write benchmarks/figures/<name>.png (label, size, metric per point); return its path relative to the repo."""
    fig, ax = plt.subplots(figsize=(9, 4.5 + 0.22 * len(points)), dpi=110)
    front = pareto_front(points)
    for i, (label, size, metric) in enumerate(points):
        marker = "*" if label.startswith("edgecompress") else "o"
        ax.scatter(size, metric, s=110 if marker == "*" else 50, marker=marker, label=f"{i + 1}. {label}", zorder=3)
        ax.annotate(str(i + 1), (size, metric), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.plot([p[1] for p in front], [p[2] for p in front], color="grey", linestyle="--", linewidth=1, label="Pareto front", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: reruns differ only in data
    plt.close(fig)
    path = FIGURES / f"{name}.png"
    atomic_write_bytes(path, buffer.getvalue())
    return f"benchmarks/figures/{name}.png"
