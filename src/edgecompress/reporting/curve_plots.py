"""The sweep chart: metric vs sparsity, vs packed size and vs latency; one line per method, the baseline,
the tolerance band, the sweet spots, the smaller dense models and the pruned architectures trained from scratch.

The y-axis shows the band where the choice is made (down to ZOOM tolerances from the baseline), not the whole
range a model with no fine-tuning falls to; points below it are marked at the edge and counted in a note.
The legend sits below the panels (the saved PNG grows to hold it), where it covers no curve.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import FuncFormatter

from edgecompress.core.results import FROM_SCRATCH
from edgecompress.reporting.plotting.canvas import figure

ZOOM = 10  # the y-axis reaches this many tolerances past the baseline (at least MIN_ZOOM metric units)
MIN_ZOOM = 3.0


def plot_sweep(result, path: str | Path, metric) -> Path:
    methods = sorted({p.method for p in result.points if p.method != "dense-small" and not p.method.endswith(FROM_SCRATCH)})
    removed = lambda p: 1 - p.nonzero_params / result.baseline.params  # noqa: E731
    size_kb = lambda p: p.storage_bytes / 1000  # noqa: E731
    latency = lambda p: result.latencies[p.key].ratio_to_baseline  # noqa: E731
    panels = [(removed, "fraction of parameters removed", "metric vs sparsity (stars: sweet spots)", "linear"),
              (size_kb, "packed size (KB, log)", "metric vs size on disk", "log")]
    if result.latencies:
        batch = next(iter(result.latencies.values())).batch
        panels.append((latency, f"latency / baseline (ONNX Runtime, batch {batch}, 1 thread)", "metric vs latency", "linear"))
    better = 1 if getattr(metric, "higher_is_better", True) else -1
    edge = result.baseline.score - better * max(ZOOM * result.tolerance, MIN_ZOOM)
    scores = [p.score for p in result.points] + [result.baseline.score]
    below = sum(1 for p in result.points if better * (p.score - edge) < 0)
    with figure(path, ncols=len(panels), width=5.5, height=4.0) as (fig, axes):
        for ax, (x, xlabel, title, scale) in zip(axes, panels):
            for index, method in enumerate(methods):
                color = f"C{index}"
                for finetuned, style in ((False, "--"), (True, "-")):
                    if x is latency and not finetuned:
                        continue  # same architecture as the fine-tuned point, same latency
                    points = sorted((p for p in result.points if p.method == method and p.finetuned == finetuned), key=lambda p: p.level)
                    label = f"{method}{' + fine-tune' if finetuned else ', no fine-tune'}"
                    ax.plot([x(p) for p in points], [p.score for p in points], style, marker="o", color=color, label=label)
                scratch = sorted((p for p in result.points if p.method == method + FROM_SCRATCH), key=lambda p: p.level)
                if scratch:
                    ax.plot([x(p) for p in scratch], [p.score for p in scratch], "-.", marker="x", color=color,
                            label=f"{method} architecture, trained from scratch")
                spot = result.sweet_spots.get(method)
                if spot is not None:
                    ax.plot(x(spot), spot.score, "*", markersize=16, color=color)
            dense = sorted((p for p in result.points if p.method == "dense-small"), key=lambda p: p.level)
            if dense:
                ax.plot([x(p) for p in dense], [p.score for p in dense], ":", marker="s", color="black", label="smaller dense model, same params")
            ax.axhline(result.baseline.score, color="#7f7f7f", linewidth=1, label="dense baseline")
            ax.axhline(result.baseline.score - result.tolerance, color="#7f7f7f", linewidth=1, linestyle=":", label=f"tolerance {result.tolerance:g}")
            ax.set_ylabel(f"{metric.name} {metric.unit}".strip())
            ax.set_xlabel(xlabel)
            ax.set_xscale(scale)
            if scale == "log":  # plain numbers (0.2, 0.4, 2), not 2x10^-1
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "125" else ""))
            ax.set_title(title)
            ax.grid(alpha=0.3)
            top = max(scores) if better > 0 else min(scores)
            margin = 0.05 * abs(top - edge)
            low, high = (edge, top + margin) if better > 0 else (top - margin, edge)
            if below:  # points past the band: drawn on its edge, so one sees that they exist
                ax.plot([x(p) for p in result.points if better * (p.score - edge) < 0], [edge] * below, "v", color="#d62728",
                        markersize=5, clip_on=False, label="_below")
            ax.set_ylim(low, high)
        if result.latencies:
            axes[2].axvline(1.0, color="#7f7f7f", linewidth=1)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(labels)), fontsize=7, frameon=False)
        if below:
            fig.text(0.01, 1.0, f"{below} point(s) beyond {edge:.1f}{metric.unit}: red triangles on the axis edge (all in sweep.csv)",
                     fontsize=7, color="#d62728", va="bottom")
    return Path(path)
