"""Terminal summary of a run, printed by the CLI after the files are written (whole values at any width)."""

from __future__ import annotations

from edgecompress.core.sizes import format_bytes
from edgecompress.reporting.terminal import Grid


def run_summary_grid(result) -> Grid:
    """One row per model (baseline, then each stage); `reporting.terminal.print_grid` lays it out."""
    metric = result.task.metric
    headers = ["model", metric.name, "file size", "smaller", "packed", "non-zero", "MACs", "b1 latency", "b256 latency", "b256 speed"]
    base = result.baseline
    rows = [
        [
            m.name,
            f"{m.score:.2f}{metric.unit}",
            format_bytes(m.artifact_bytes),
            f"{base.artifact_bytes / m.artifact_bytes:.1f}x",
            format_bytes(m.storage_bytes) if m.storage_bytes else "-",
            f"{m.nonzero_params:,}",
            f"{m.macs:,}",
            f"{m.latency[1].median_ms * 1000:.1f} us",
            f"{m.latency[256].median_ms:.3f} ms",
            f"{base.latency[256].median_ms / m.latency[256].median_ms:.2f}x",
        ]
        for m in [base, *result.stages]
    ]
    return Grid(f"edgecompress: {result.task.name} ({result.out_dir})", headers, rows)
