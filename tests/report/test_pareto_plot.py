"""pareto.png: the y axis is the drop with the sign `fit` prints, and the size axis has plain tick labels."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import pytest

from edgecompress.orchestration.search.pareto import Candidate, choose
from edgecompress.orchestration.search.pareto_plot import plot_pareto, size_label, size_ticks
from edgecompress.orchestration.search.targets import Targets
from edgecompress.reporting.plotting import canvas

CANDIDATES = [  # label, packed bytes, drop (baseline minus candidate, as fit prints it)
    ("int8", 15_600, 0.1), ("channels-50%, int8", 9_800, 0.6), ("channels-75%, int8", 6_200, 2.4), ("lossy", 7_000, 3.0),
]


def _drawn(tmp_path, monkeypatch, candidates, targets):
    result = choose([Candidate(label, label, size, 98.0 - drop, drop, 0.1, 0.5) for label, size, drop in candidates], targets, False)
    figures = []
    monkeypatch.setattr(canvas.plt, "close", figures.append)
    plot_pareto(tmp_path / "pareto.png", result, "accuracy")
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figures
    return result, fig


def test_the_y_axis_is_the_drop_fit_prints_with_the_same_sign(tmp_path, monkeypatch):
    result, fig = _drawn(tmp_path, monkeypatch, CANDIDATES, Targets(max_bytes=10_000, max_drop=1.0))
    (ax,) = fig.axes
    assert "drop" in ax.get_ylabel() and "lower is better" in ax.get_ylabel()
    points = {tuple(offset) for collection in ax.collections for offset in collection.get_offsets()}
    assert points == {(size, drop) for _, size, drop in CANDIDATES}  # drop as printed: +2.4, not -2.4
    assert result.message.endswith("drop +0.60 meets every target (size <= 10,000 B (packed), drop <= 1)")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["max drop"].get_ydata()) == [1.0, 1.0]  # the budget on the same side as the drops it limits
    assert list(lines["max size"].get_xdata()) == [10_000, 10_000]
    plt.close(fig)


@pytest.mark.parametrize("sizes", [(6_200, 15_600), (900, 2_500_000), (40_100, 40_900)])
def test_the_size_axis_has_plain_labels_with_units(tmp_path, monkeypatch, sizes):
    candidates = [(f"c{i}", size, 0.5 * i) for i, size in enumerate(sizes)]
    _, fig = _drawn(tmp_path, monkeypatch, candidates, Targets(max_bytes=max(sizes)))
    fig.canvas.draw()
    axis = fig.axes[0].xaxis
    labels = [t.get_text() for t in axis.get_majorticklabels() if t.get_text()]
    assert len(labels) >= 3 and all(re.fullmatch(r"\d+(\.\d+)? (B|KB|MB)", label) for label in labels), labels
    assert not [t for t in axis.get_minorticklabels() if t.get_text()]
    plt.close(fig)


def test_size_ticks_are_round_and_inside_the_range():
    assert size_ticks(9_000, 40_000) == [10_000, 15_000, 20_000, 30_000]
    assert size_ticks(800, 3_000_000) == [1_000, 10_000, 100_000, 1_000_000]
    narrow = size_ticks(40_100, 40_900)
    assert narrow == [40_200, 40_400, 40_600, 40_800]  # narrower than one mantissa step: evenly spaced
    assert [size_label(v) for v in (800, 8_000, 15_000, 1_500_000)] == ["800 B", "8 KB", "15 KB", "1.5 MB"]
