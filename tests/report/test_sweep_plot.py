"""sweep.png: the y-axis shows the band where the choice is made, points below it are marked, and the legend
covers no curve."""

from __future__ import annotations

import re
from types import SimpleNamespace

import matplotlib.pyplot as plt

from edgecompress.core.results import SweepPoint, SweepResult
from edgecompress.reporting.curve_plots import plot_sweep
from edgecompress.reporting.plotting import canvas

ACCURACY = SimpleNamespace(name="accuracy", unit="%", higher_is_better=True)


def _point(method, level, finetuned, score):
    return SweepPoint(method, level, finetuned, score, 1000, int(1000 * (1 - level)), 4000, int(4000 * (1 - level)))


def test_the_y_axis_zooms_on_the_band_near_the_baseline_and_marks_points_below_it(tmp_path, monkeypatch):
    points = [_point("unstructured", lv, ft, s) for lv, ft, s in
              [(0.5, False, 97.9), (0.9, False, 40.0), (0.95, False, 10.0), (0.5, True, 98.3), (0.9, True, 97.8), (0.95, True, 96.1)]]
    result = SweepResult(_point("dense", 0.0, False, 98.33), points, {"unstructured": points[4]}, 0.5)
    figures, close = [], plt.close
    monkeypatch.setattr(canvas.plt, "close", figures.append)
    assert plot_sweep(result, tmp_path / "sweep.png", ACCURACY).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figures
    for ax in fig.axes:
        low, high = ax.get_ylim()
        assert low == 98.33 - 5.0 and 98.33 < high < 99.0  # 10 tolerances below the baseline: 93.33 to just above 98.33
        assert ax.get_legend() is None  # no legend inside a panel, over the curves
    (legend,) = fig.legends
    assert "unstructured + fine-tune" in [t.get_text() for t in legend.get_texts()]
    legend_box = legend.get_window_extent(fig.canvas.get_renderer())
    assert all(legend_box.y1 <= ax.get_window_extent().y0 for ax in fig.axes)  # below the panels
    assert [t.get_text() for t in fig.texts] == ["2 point(s) beyond 93.3%: red triangles on the axis edge (all in sweep.csv)"]
    close(fig)


def test_the_size_axis_has_plain_tick_labels(tmp_path, monkeypatch):
    points = [_point("unstructured", lv, True, 98.0) for lv in (0.5, 0.9, 0.95)]
    result = SweepResult(_point("dense", 0.0, False, 98.33), points, {"unstructured": None}, 0.5)
    figures, close = [], plt.close
    monkeypatch.setattr(canvas.plt, "close", figures.append)
    plot_sweep(result, tmp_path / "sweep.png", ACCURACY)
    (fig,) = figures
    size_axis = fig.axes[1].xaxis
    labels = [t.get_text() for t in size_axis.get_majorticklabels() + size_axis.get_minorticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d+(\.\d+)?", label) for label in labels), labels
    close(fig)
