"""A sparsity sweep that belongs to a run: `edgecompress sweep --out DIR/sweep` before `run --out DIR`.

The report shows its sparsity-vs-metric curve; a run without a DIR/sweep/sweep.json simply has none.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgecompress.core.results import SweepPoint, SweepResult

SWEEP_FILE = Path("sweep") / "sweep.json"


def find_sweep(run_dir: Path) -> SweepResult | None:
    """The sweep saved in `run_dir/sweep/sweep.json`, or None when there is none (or it cannot be read)."""
    path = run_dir / SWEEP_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        spots = {m: SweepPoint(**p) if p else None for m, p in doc["sweet_spots"].items()}
        return SweepResult(
            SweepPoint(**doc["baseline"]), [SweepPoint(**p) for p in doc["points"]], spots,
            doc["tolerance"], doc.get("smaller_dense_comparison", []), scratch_comparison=doc.get("from_scratch_comparison", []),
        )
    except (ValueError, KeyError, TypeError):  # an older or hand-edited file: the report goes on without it
        return None
