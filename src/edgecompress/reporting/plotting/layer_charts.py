"""Bar charts of parameters and MACs per layer, for one model or several side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecompress.inspect.layers import LayerTable
from edgecompress.reporting.plotting.canvas import figure


def plot_layers(tables: dict[str, LayerTable], path: str | Path, title: str = "") -> Path:
    """Write a PNG with two panels (parameters, MACs per layer); one bar series per table.

    Layers are matched by name; a layer missing from a table shows as zero.
    """
    names: list[str] = []
    for table in tables.values():
        names += [r.name for r in table.rows if r.name not in names and (r.params or r.macs)]
    x = np.arange(len(names))
    width = 0.8 / max(1, len(tables))
    with figure(path, ncols=2, width=max(5.0, 0.6 * len(names) + 2.5)) as (fig, (ax_params, ax_macs)):
        for i, (label, table) in enumerate(tables.items()):
            by_name = {r.name: r for r in table.rows}
            params = [by_name[n].params if n in by_name else 0 for n in names]
            macs = [by_name[n].macs if n in by_name else 0 for n in names]
            offset = (i - (len(tables) - 1) / 2) * width
            ax_params.bar(x + offset, params, width, label=label)
            ax_macs.bar(x + offset, macs, width, label=label)
        for ax, what in ((ax_params, "parameters"), (ax_macs, "MACs per sample")):
            ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
            ax.set_ylabel(what)
            ax.set_title(f"{what} per layer")
            ax.grid(axis="y", alpha=0.3)
            if len(tables) > 1:
                ax.legend(fontsize=8)
        if title:
            fig.suptitle(title)
    return Path(path)
