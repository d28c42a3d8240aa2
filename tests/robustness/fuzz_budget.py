"""The property-based tests' budget, and the check that a fuzzed command wrote nothing outside its output.

CI (`make test`) runs each property test at its small budget. The nightly run (`make fuzz`, also part of
`make bench`) sets EDGECOMPRESS_FUZZ_SCALE to multiply every budget (to more than 10,000 cases in all) and
records the count in BENCHMARKS.md. Every property test is marked `fuzz`, so `pytest -m fuzz` runs them alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

SCALE = float(os.environ.get("EDGECOMPRESS_FUZZ_SCALE", "1"))


def fuzz_settings(ci_examples: int) -> settings:
    """`settings` for a property test run `ci_examples` times in CI, SCALE times as often nightly."""
    return settings(max_examples=max(1, round(ci_examples * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


def tree(*roots: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file and folder under `roots` (links not followed) with its size and mtime, except `skip`."""
    entries = {}
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            for name in subfolders + files:
                path = Path(folder, name)
                if skip is not None and (path == skip or skip in path.parents):
                    continue
                info = path.lstat()
                entries[str(path)] = (info.st_size, info.st_mtime_ns)
    return entries
