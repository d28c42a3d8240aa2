"""A headless matplotlib figure saved atomically: a killed run never leaves half a PNG."""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen on servers and CI; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

from edgecompress.storage.files import atomic_path  # noqa: E402


@contextlib.contextmanager
def figure(path: str | Path, ncols: int = 1, width: float = 6.0, height: float = 3.6):
    """Yield (fig, axes) and save the figure to `path` as PNG when the block ends."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    try:
        yield fig, list(axes[0])
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")  # also holds legends placed outside the axes
    finally:
        plt.close(fig)
