"""Latency of a sweep's points: every point's ONNX file timed in ONNX Runtime, in the driver, after the trials.

Trials may run in parallel or on other machines, where timings would be disturbed by their neighbours or not
comparable; so the driver times all files in one interleaved call (one thread, median of repeats), each as a
ratio to the baseline measured alongside. Timings vary from run to run, so they live in latency.csv, apart
from sweep.csv, whose scores and sizes are the same on every executor.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgecompress.core.results import PointLatency, SweepPoint
from edgecompress.runtime.latency import measure_latencies


def point_latencies(folder: Path, points: list[SweepPoint], sample_shape: tuple[int, ...], batch: int,
                    rounds: int = 5, min_round_seconds: float = 0.02) -> dict[str, PointLatency]:
    """Key -> latency of points/<key>.onnx at `batch`; the first point is the baseline the ratios refer to."""
    timed = measure_latencies([folder / f"{p.key}.onnx" for p in points], sample_shape, (batch,), rounds, min_round_seconds)
    base = timed[0][batch].median_ms
    return {
        p.key: PointLatency(batch, t[batch].median_ms, t[batch].p25_ms, t[batch].p75_ms, t[batch].median_ms / base)
        for p, t in zip(points, timed)
    }


def latency_csv(latencies: dict[str, PointLatency]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["point", "batch", "median_ms", "p25_ms", "p75_ms", "ratio_to_baseline", "noisy"])
    for key, lat in latencies.items():
        writer.writerow([key, lat.batch, f"{lat.median_ms:.4f}", f"{lat.p25_ms:.4f}", f"{lat.p75_ms:.4f}",
                         f"{lat.ratio_to_baseline:.3f}", "yes" if lat.noisy else ""])
    return buffer.getvalue()
