"""What a run leaves for people: metrics.json, PNG plots and a self-contained report.html."""

from edgecompress.reporting.report.write import write_run_outputs

__all__ = ["write_run_outputs"]
