"""Latency of ONNX artifacts in ONNX Runtime: median of repeats, artifacts interleaved.

Timing rounds alternate between the artifacts being compared so that drift on a shared machine hits all of
them alike; a ratio taken within one call is the number to trust, absolute times drift.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.runtime.sessions import make_session


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p25_ms: float
    p75_ms: float
    repeats: int

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return (self.p75_ms - self.p25_ms) / self.median_ms if self.median_ms else 0.0


def measure_latencies(
    paths: list[Path],
    sample_shape: tuple[int, ...],
    batch_sizes: tuple[int, ...] = (1, 256),
    rounds: int = 7,
    min_round_seconds: float = 0.05,
    seed: int = 0,
) -> list[dict[int, Latency]]:
    """For each ONNX file, median latency per batch size (one thread, random input of `sample_shape`).

    `sample_shape` is one sample's shape without the batch axis.
    """
    rng = np.random.default_rng(seed)
    feeds = {batch: rng.standard_normal((batch, *sample_shape), dtype=np.float32) for batch in batch_sizes}
    return measure_feed_latencies(paths, feeds, rounds, min_round_seconds)


def measure_feed_latencies(
    paths: list[Path],
    feeds: dict[int, "np.ndarray | dict[str, np.ndarray]"],
    rounds: int = 7,
    min_round_seconds: float = 0.05,
) -> list[dict[int, Latency]]:
    """Like `measure_latencies`, with given inputs: batch size -> one array, or a dict of named inputs
    (e.g. a tokenized batch for a text encoder)."""
    sessions = [make_session(p) for p in paths]
    results: list[dict[int, Latency]] = [{} for _ in paths]
    for batch, feed in feeds.items():
        calls = []
        for session in sessions:
            run = _runner(session, feed)
            run()  # warm-up: first call allocates and picks kernels
            calls.append((run, _calls_per_round(run, min_round_seconds)))
        samples: list[list[float]] = [[] for _ in paths]
        for _ in range(rounds):
            for i, (run, n) in enumerate(calls):
                for _ in range(n):
                    start = time.perf_counter()
                    run()
                    samples[i].append((time.perf_counter() - start) * 1000)
        for i, times in enumerate(samples):
            q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
            results[i][batch] = Latency(statistics.median(times), q[0], q[2], len(times))
    return results


def _runner(session, feed):
    if isinstance(feed, dict):  # only what this file takes: a decoder with fewer layers has fewer cache inputs
        taken = {i.name for i in session.get_inputs()}
        feed = {name: value for name, value in feed.items() if name in taken}
        return lambda: session.run(None, feed)
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: feed})


def _calls_per_round(run, min_seconds: float) -> int:
    start = time.perf_counter()
    run()
    once = max(time.perf_counter() - start, 1e-6)
    return max(1, min(200, int(min_seconds / once)))
