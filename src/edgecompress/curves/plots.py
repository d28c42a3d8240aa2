"""The sweep chart: metric vs sparsity and vs packed size, one line per method, the baseline and sweet spots."""

from __future__ import annotations

from pathlib import Path

from edgecompress.plotting.canvas import figure


def plot_sweep(result, path: str | Path, metric) -> Path:
    methods = sorted({p.method for p in result.points if p.method != "dense-small"})
    with figure(path, ncols=2, width=5.5, height=4.0) as (fig, (ax_level, ax_size)):
        for index, method in enumerate(methods):
            color = f"C{index}"
            for finetuned, style in ((False, "--"), (True, "-")):
                points = sorted((p for p in result.points if p.method == method and p.finetuned == finetuned), key=lambda p: p.level)
                label = f"{method}{' + fine-tune' if finetuned else ', no fine-tune'}"
                ax_level.plot([1 - p.nonzero_params / result.baseline.params for p in points], [p.score for p in points], style, marker="o", color=color, label=label)
                ax_size.plot([p.storage_bytes / 1000 for p in points], [p.score for p in points], style, marker="o", color=color, label=label)
            spot = result.sweet_spots.get(method)
            if spot is not None:
                ax_level.plot(1 - spot.nonzero_params / result.baseline.params, spot.score, "*", markersize=16, color=color)
                ax_size.plot(spot.storage_bytes / 1000, spot.score, "*", markersize=16, color=color)
        dense = sorted((p for p in result.points if p.method == "dense-small"), key=lambda p: p.level)
        if dense:
            ax_level.plot([1 - p.params / result.baseline.params for p in dense], [p.score for p in dense], ":", marker="s", color="black", label="smaller dense model, same params")
            ax_size.plot([p.storage_bytes / 1000 for p in dense], [p.score for p in dense], ":", marker="s", color="black", label="smaller dense model, same params")
        for ax in (ax_level, ax_size):
            ax.axhline(result.baseline.score, color="#7f7f7f", linewidth=1, label="dense baseline")
            ax.axhline(result.baseline.score - result.tolerance, color="#7f7f7f", linewidth=1, linestyle=":", label=f"tolerance {result.tolerance:g}")
            ax.set_ylabel(f"{metric.name} {metric.unit}".strip())
            ax.grid(alpha=0.3)
        ax_level.set_xlabel("fraction of parameters removed")
        ax_level.set_title("metric vs sparsity (stars: sweet spots)")
        ax_size.set_xlabel("packed size (KB, log)")
        ax_size.set_xscale("log")
        ax_size.set_title("metric vs size on disk")
        ax_level.legend(fontsize=7)
    return Path(path)
