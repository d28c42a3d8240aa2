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
