"""Terminal summary of a run (rich table), printed by the CLI after the files are written."""

from __future__ import annotations

from rich.table import Table

from edgecompress.core.sizes import format_bytes


def run_summary_table(result) -> Table:
    metric = result.task.metric
    table = Table(title=f"edgecompress: {result.task.name} ({result.out_dir})")
    for header in ("model", metric.name, "file size", "smaller", "packed", "non-zero", "MACs", "b1 latency", "b256 latency", "b256 speed"):
        table.add_column(header, justify="left" if header == "model" else "right")
    base = result.baseline
    for m in [base, *result.stages]:
        table.add_row(
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
        )
    return table
