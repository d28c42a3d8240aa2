"""The run's summary plot: size, score and latency of the baseline and each stage's artifact."""

from __future__ import annotations

from pathlib import Path

from edgecompress.reporting.plotting.canvas import figure


def plot_stages(result, path: str | Path) -> Path:
    """Three panels: file size, metric, and latency at batch 1 and 256 relative to the baseline, each with the
    range the repeats allow (as the summary's speedup interval: the quartiles of both models, crossed)."""
    models = [result.baseline, *result.stages]
    labels = [m.name for m in models]
    sizes_kb = [m.artifact_bytes / 1000 for m in models]
    scores = [m.score for m in models]
    base_latency = result.baseline.latency
    colors = ["#7f7f7f"] + ["#1f77b4"] * (len(models) - 2) + ["#2ca02c"] if len(models) > 1 else ["#7f7f7f"]
    metric = result.task.metric
    with figure(path, ncols=3, width=4.2) as (fig, (ax_size, ax_score, ax_latency)):
        ax_size.bar(labels, sizes_kb, color=colors)
        ax_size.set_ylabel("ONNX file size (KB)")
        ax_size.set_title("size on disk (x smaller)")
        for i, kb in enumerate(sizes_kb):
            ax_size.annotate(f"{sizes_kb[0] / kb:.1f}x", (i, kb), ha="center", va="bottom", fontsize=8)
        ax_score.plot(labels, scores, marker="o")
        ax_score.axhline(scores[0], color="#7f7f7f", linestyle="--", linewidth=1, label="baseline")
        ax_score.set_ylabel(f"{metric.name} {metric.unit}".strip())
        ax_score.set_title(f"{metric.name} (ONNX Runtime)")
        ax_score.legend(fontsize=8)
        for batch, marker in ((1, "o"), (256, "s")):
            if batch in base_latency:
                ratios, low, high = latency_ratios([m.latency[batch] for m in models], base_latency[batch])
                ax_latency.errorbar(labels, ratios, yerr=[[r - lo for r, lo in zip(ratios, low)], [hi - r for r, hi in zip(ratios, high)]],
                                    marker=marker, capsize=3, label=f"batch {batch}")
        ax_latency.axhline(1.0, color="#7f7f7f", linestyle="--", linewidth=1)
        ax_latency.set_ylabel("latency / baseline (bars: p25-p75 range)")
        ax_latency.set_title("latency, 1 thread (lower is faster)")
        ax_latency.legend(fontsize=8)
        for ax in (ax_size, ax_score, ax_latency):
            ax.tick_params(axis="x", rotation=30, labelsize=8)
            ax.grid(axis="y", alpha=0.3)
    return Path(path)


def latency_ratios(latencies: list, base) -> tuple[list[float], list[float], list[float]]:
    """Each model's median latency over the baseline's, and the p25-p75 range of that ratio: from its p25 over
    the baseline's p75 to its p75 over the baseline's p25 (the speedup interval of metrics.json, inverted).

    >>> from edgecompress.runtime.latency import Latency
    >>> latency_ratios([Latency(2.0, 1.8, 2.4, 7)], Latency(4.0, 3.6, 4.5, 7))
    ([0.5], [0.4], [0.6666666666666666])
    """
    return ([m.median_ms / base.median_ms for m in latencies], [m.p25_ms / base.p75_ms for m in latencies],
            [m.p75_ms / base.p25_ms for m in latencies])
