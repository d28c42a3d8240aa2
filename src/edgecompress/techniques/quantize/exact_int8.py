"""Every int8 artifact is checked for exactness before it ships, and repaired or refused if it is not.

A quantize step writes its artifact with the int8 format its target needs (`runtime/targets.py`), then
runs it on calibration batches and recomputes every integer node exactly (`runtime/exactness.py`). If more
than 0.1% of a node's outputs are off on this machine and this machine is one the artifact is for, the
artifact is written again with 7-bit weights (exact on every class) and checked again; if it is still off,
the run stops with one line naming the node. The verdict goes into metrics.json either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from edgecompress.core.errors import RunFailure
from edgecompress.core.progress import console
from edgecompress.runtime.exactness import check_exactness
from edgecompress.runtime.runners import Runner
from edgecompress.runtime.targets import classes_of, host_cpu, int8_format, resolve_target

CHECK_BATCHES = 4  # calibration batches the check runs: enough outputs to see a 0.1% rate


def ensure_exact_int8(
    write: Callable[[int], Path],
    batches: Iterable[Mapping[str, np.ndarray]],
    target: str,
    label: str = "quantize",
    runner: Runner | None = None,
    cpu: str | None = None,
) -> dict:
    """Write the artifact with `write(weight_bits)` for `target`, check it, repair it if needed; return the record.

    `runner`/`cpu` say where the check runs (default: this machine).

    >>> record = ensure_exact_int8(lambda bits: quantize(bits), calibration, "portable")  # doctest: +SKIP
    >>> record["exactness"]["exact"]  # doctest: +SKIP
    True
    """
    fmt = int8_format(target)
    batches = [dict(b) for b, _ in zip(batches, range(CHECK_BATCHES))]
    path = write(fmt.weight_bits)
    report = check_exactness(path, batches, runner, cpu)
    record = {
        "target": target, "resolved_target": resolve_target(target), "weight_bits": fmt.weight_bits,
        "format": "uint8 activations x int8 weights", "why": fmt.why, "exactness": report.to_json(),
    }
    if report.exact:
        return record
    checked_on = report.cpu
    if runner is None and host_cpu().cpu_class not in classes_of(target):
        # This machine is not one the artifact is for: its kernels differ from the target's.
        record["host_is_target"] = False
        console.log(
            f"{label}: warning: {report.summary()}; this {host_cpu().cpu_class} machine is not the target "
            f"({resolve_target(target)}), so the scores measured here are not the target's; "
            f"use --target portable for an artifact exact everywhere"
        )
        return record
    if fmt.weight_bits == 8:
        off = [n.node for n in report.off_nodes()]
        path = write(7)
        repaired = check_exactness(path, batches, runner, cpu)
        record.update(weight_bits=7, repaired={"why": report.summary(), "off_nodes": off, "before": report.to_json()})
        record["exactness"] = repaired.to_json()
        console.log(f"{label}: {report.summary()}; repaired: weights rewritten within +-64 (7 bits)")
        report = repaired
        if report.exact:
            return record
    worst = max(report.nodes, key=lambda n: n.off_fraction)
    raise RunFailure(
        f"{label}: {worst.node} ({worst.op}) computes {100 * worst.off_fraction:.2f}% of its int8 outputs wrong on "
        f"{checked_on} even with 7-bit weights; keep that layer in float (keep_float)"
    )
