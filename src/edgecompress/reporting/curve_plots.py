"""The sweep chart: metric vs sparsity, vs packed size and vs latency; one line per method, the baseline,
the tolerance band, the sweet spots and the smaller dense models."""

from __future__ import annotations

from pathlib import Path

from edgecompress.reporting.plotting.canvas import figure


def plot_sweep(result, path: str | Path, metric) -> Path:
    methods = sorted({p.method for p in result.points if p.method != "dense-small"})
    removed = lambda p: 1 - p.nonzero_params / result.baseline.params  # noqa: E731
    size_kb = lambda p: p.storage_bytes / 1000  # noqa: E731
    latency = lambda p: result.latencies[p.key].ratio_to_baseline  # noqa: E731
    panels = [(removed, "fraction of parameters removed", "metric vs sparsity (stars: sweet spots)", "linear"),
              (size_kb, "packed size (KB, log)", "metric vs size on disk", "log")]
    if result.latencies:
        batch = next(iter(result.latencies.values())).batch
        panels.append((latency, f"latency / baseline (ONNX Runtime, batch {batch}, 1 thread)", "metric vs latency", "linear"))
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
            ax.set_title(title)
            ax.grid(alpha=0.3)
        if result.latencies:
            axes[2].axvline(1.0, color="#7f7f7f", linewidth=1)
        axes[0].legend(fontsize=7)
    return Path(path)
