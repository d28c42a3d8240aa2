"""What the plots' captions claim: axes labelled, and no int8 grid that per-channel scales would make false."""

from __future__ import annotations

import matplotlib.pyplot as plt

from edgecompress.reporting.plotting import canvas
from edgecompress.reporting.plotting.weight_histograms import plot_weight_histograms
from edgecompress.reporting.report.html import CAPTIONS


def test_weight_histograms_label_their_axes_and_draw_no_per_tensor_grid(pruned_run, tmp_path, monkeypatch):
    figures, close = [], plt.close
    monkeypatch.setattr(canvas.plt, "close", figures.append)  # keep the figure to read it; closed below
    path = plot_weight_histograms(pruned_run.baseline_model, pruned_run.final_torch_model, tmp_path / "weights.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figures
    axes = fig.axes
    assert [ax.get_title().split(":")[0] for ax in axes] == ["fc1", "conv2", "fc2", "conv1"]  # largest layers first
    for ax in axes:
        assert ax.get_xlabel() == "weight value (float)" and ax.get_ylabel() == "weights per bin (log scale)"
        assert ax.get_yscale() == "log" and len(ax.lines) == 0  # histograms only: no vertical grid lines
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before", "after (non-zero)"]
    assert "int8 level" not in fig._suptitle.get_text()
    assert "no grid is drawn" in CAPTIONS["weights.png"]
    close(fig)


def test_stages_latency_panel_draws_the_p25_p75_range_of_each_ratio(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from edgecompress.reporting.report.plots import plot_stages
    from edgecompress.runtime.latency import Latency

    def model(name, b1, b256):
        return SimpleNamespace(name=name, artifact_bytes=10_000, score=98.0, latency={1: Latency(*b1, 7), 256: Latency(*b256, 7)})

    base = model("baseline", (0.10, 0.09, 0.12), (4.0, 3.6, 4.5))
    final = model("quantize", (0.05, 0.045, 0.06), (2.0, 1.8, 2.4))
    result = SimpleNamespace(baseline=base, stages=[final], task=SimpleNamespace(metric=SimpleNamespace(name="accuracy", unit="%")))
    figures, close = [], plt.close
    monkeypatch.setattr(canvas.plt, "close", figures.append)
    plot_stages(result, tmp_path / "stages.png")
    (fig,) = figures
    latency = fig.axes[2]
    assert latency.get_ylabel() == "latency / baseline (bars: p25-p75 range)"
    bars = {c.get_label(): c for c in latency.containers}
    (b256,) = bars["batch 256"].lines[2]  # the vertical error segments
    ranges = [tuple(round(y, 4) for y in segment[:, 1]) for segment in b256.get_segments()]
    assert ranges == [(round(3.6 / 4.5, 4), round(4.5 / 3.6, 4)), (round(1.8 / 4.5, 4), round(2.4 / 3.6, 4))]
    assert "p25-p75 range" in CAPTIONS["stages.png"]
    close(fig)
