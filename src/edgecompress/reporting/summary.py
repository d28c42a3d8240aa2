"""Terminal summary of a run, printed by the CLI after the files are written (whole values at any width)."""

from __future__ import annotations

import json

from edgecompress.core.sizes import format_bytes
from edgecompress.reporting.latency_noise import machine_load, speedup
from edgecompress.reporting.terminal import Grid

GROUP_ABOVE = 3  # more layers than this left in float for one reason are listed as one line


def speed_batch(result) -> int:
    """The batch size speedups are quoted at: the task's largest timed batch (256 for images, 32 for sentences)."""
    return max(result.baseline.latency)


def run_summary_grid(result) -> Grid:
    """One row per model (baseline, then each stage); `reporting.terminal.print_grid` lays it out."""
    metric = result.task.metric
    big = speed_batch(result)
    latency_columns = ["b1 latency"] if big == 1 else ["b1 latency", f"b{big} latency"]  # a decoder is timed at batch 1 only
    headers = ["model", metric.name, "file size", "smaller", "packed", "non-zero", "MACs", *latency_columns, f"b{big} speedup (p25-p75)"]
    base = result.baseline
    rows = [
        [
            m.name,
            f"{m.score:.2f}{metric.unit}" if metric.unit == "%" or abs(m.score) >= 10 else f"{m.score:.4f}{metric.unit}",
            format_bytes(m.artifact_bytes),
            f"{base.artifact_bytes / m.artifact_bytes:.1f}x",
            format_bytes(m.storage_bytes) if m.storage_bytes else "-",
            f"{m.nonzero_params:,}",
            f"{m.macs:,}",
            f"{m.latency[1].median_ms * 1000:.1f} us",
            *([] if big == 1 else [f"{m.latency[big].median_ms:.3f} ms"]),
            "-" if m is base else speedup(base.latency[big], m.latency[big], big, None, 1).interval,
        ]
        for m in [base, *result.stages]
    ]
    return Grid(f"edgecompress: {type(result.baseline_model).__name__} on {result.task.name} ({result.out_dir})", headers, rows)


def left_as_is_lines(result) -> list[str]:
    """One line per layer a stage selected but left as it was, and why: prune layers left whole (the model's
    outputs), and layers an int8 file leaves computing in float (metrics.json: left_unpruned, left_float)."""
    lines = []
    for index, stage in enumerate(result.stages, start=1):
        label = f"stage {index} ({stage.name})"
        for layer, why in stage.details.get("left_unpruned", {}).items():
            lines.append(f"{label}: {layer} left whole: {why}")
        alike: dict[tuple, list[str]] = {}
        for entry in stage.details.get("left_float", ()):
            alike.setdefault((entry["op"], entry["weights"], entry["why"]), []).append(entry["layer"])
        for (op, weights, why), layers in alike.items():
            if len(layers) <= GROUP_ABOVE:
                lines += [f"{label}: {layer} ({op}) computes in float, weights {weights}: {why}" for layer in layers]
            else:  # a transformer's 25 normalisation layers are one line, not 25
                names = f"{', '.join(layers[:2])}, ... {layers[-1]}"
                lines.append(f"{label}: {len(layers)} layers ({op}: {names}) compute in float, weights {weights}: {why}")
    return lines


def latency_note(result) -> str | None:
    """A line saying the batch-256 speedup is noisy, and why; None when it is not.

    The load average is the one metrics.json recorded right after the timing (now, if it has none).
    """
    try:
        conditions = json.loads((result.out_dir / "metrics.json").read_text(encoding="utf-8"))["summary"]["latency_conditions"]
        load, cpus = conditions["load_average_1min"], conditions["cpus"]
    except (OSError, ValueError, KeyError, TypeError):
        load, cpus = machine_load()
    big = speed_batch(result)
    final = speedup(result.baseline.latency[big], result.final.latency[big], big, load, cpus)
    if not final.noisy:
        return None
    return (f"latency noisy: {'; '.join(final.reasons)}. The final model's batch-{big} speedup is somewhere in "
            f"{final.interval}; time it again on a quiet machine before quoting one number.")
