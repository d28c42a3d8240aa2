"""Weight histograms before and after compression, in float (the last PyTorch form, before int8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import LogFormatter
from torch import nn

from edgecompress.core.measure.params import effective_parameters
from edgecompress.reporting.plotting.canvas import figure

MAX_PANELS = 4


def plot_weight_histograms(before: nn.Module, after: nn.Module, path: str | Path) -> Path:
    """One panel per largest weighted layer: weights before (grey) and after (blue, zeros counted apart).

    No int8 grid is drawn: int8 scales are per output channel, so one set of grid lines for a whole layer
    would place most channels' levels wrongly. The report's layer table names the values the file holds.
    """
    weights_before = _weights(before)
    weights_after = _weights(after)
    names = sorted(weights_after, key=lambda n: -weights_after[n].size)[:MAX_PANELS]
    with figure(path, ncols=max(1, len(names)), width=4.0, height=3.2) as (fig, axes):
        for ax, name in zip(axes, names):
            after_w = weights_after[name]
            nonzero = after_w[after_w != 0]
            before_w = weights_before.get(name)
            span = float(max(np.abs(after_w).max(), np.abs(before_w).max() if before_w is not None else 0)) or 1.0
            bins = np.linspace(-span, span, 121)
            if before_w is not None:
                ax.hist(before_w, bins=bins, color="#bbbbbb", label="before", histtype="stepfilled")
            ax.hist(nonzero, bins=bins, color="#1f77b4", alpha=0.8, label="after (non-zero)", histtype="stepfilled")
            zeros = 1.0 - nonzero.size / after_w.size
            ax.set_title(f"{name}: {after_w.size:,} weights, {zeros:.0%} zero", fontsize=9)
            ax.set_yscale("log")
            # plain numbers ("100", "20") instead of mathtext powers of ten: the same ticks, half the figure's CPU
            ax.yaxis.set_major_formatter(LogFormatter())
            ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
            ax.set_xlabel("weight value (float)", fontsize=8)
            ax.set_ylabel("weights per bin (log scale)", fontsize=8)
            ax.tick_params(labelsize=7, which="both")
            ax.legend(fontsize=7)
        fig.suptitle("weights before and after compression (float, before int8 quantization)", fontsize=10)
    return Path(path)


def _weights(model: nn.Module) -> dict[str, np.ndarray]:
    out = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            out[name] = effective_parameters(module)["weight"].detach().cpu().numpy().ravel()
    return out
