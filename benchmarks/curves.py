"""The sweep of #4's acceptance (6 levels x 3 methods, fine-tuned, smaller dense models) plus channel8, on the
digits CNN: its table, latency per point, sweet spots, wall time, and its chart copied to benchmarks/figures."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.common import MODELS, trained_state
from benchmarks.pareto import FIGURES
from edgecompress.core.models import DigitsCNN
from edgecompress.core.results import point_key
from edgecompress.core.tasks.digits import digits_task
from edgecompress.orchestration.curves import sweep

LEVELS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
METHODS = ("unstructured", "channel", "lowrank", "channel8")


def run() -> dict:
    model = MODELS["digits-cnn"]()
    model.load_state_dict(trained_state("digits-cnn"))
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stderr(io.StringIO()):
        start = time.perf_counter()
        result = sweep(model.eval(), digits_task(0), out, LEVELS, METHODS, small_dense=lambda w: DigitsCNN(width=w))
        seconds = time.perf_counter() - start
        FIGURES.mkdir(exist_ok=True)
        shutil.copy(Path(out) / "sweep.png", FIGURES / "sweep-digits-cnn.png")
    return {**result.to_json(), "latency": {k: {**asdict(v), "noisy": v.noisy} for k, v in result.latencies.items()}, "seconds": seconds}


def markdown(result: dict) -> str:
    base = result["baseline"]["score"]
    latency = result["latency"]
    batch = latency["baseline-0-raw"]["batch"]
    lines = [
        "## Sparsity sweep and the smaller dense model (digits CNN, seed 0)",
        "",
        f"`edgecompress sweep --levels {','.join(f'{x:g}' for x in LEVELS)} --methods {','.join(METHODS)}` (the trained",
        f"baseline reused): {len(result['points']) + 1} points in {result['seconds']:.0f} s on this machine, the latency timing included.",
        f"Dense baseline {base:.2f}%. Each point is pruned (or factorized), exported and scored in ONNX Runtime, before",
        "and after 4 epochs of distilled fine-tuning. \"Dense, same params\" is the CNN with widths scaled so its",
        "parameter count matches the unstructured point's non-zero count, trained from scratch for 44 epochs (the pruned",
        f"model's total budget). Latency: the point's ONNX file at batch {batch}, 1 thread, as a ratio to the baseline",
        "timed in the same call (median of repeats; \"noisy\" if the interquartile range exceeds 20%). channel8 is channel",
        "pruning with every layer keeping a multiple of 8 channels (`round_to: 8`).",
        "",
        "| method | level | non-zero params | packed | no fine-tune | fine-tuned | latency | dense, same params | winner |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    points = result["points"]
    dense = {row["level"]: row for row in result["smaller_dense_comparison"]}
    for method in METHODS:
        for level in LEVELS:
            raw = next(p for p in points if p["method"] == method and p["level"] == level and not p["finetuned"])
            tuned = next(p for p in points if p["method"] == method and p["level"] == level and p["finetuned"])
            timing = latency[point_key(method, level, True)]
            noisy = " (noisy)" if timing["noisy"] else ""
            row = dense.get(level) if method == "unstructured" else None
            dense_latency = latency[point_key("dense-small", level, True)]["ratio_to_baseline"] if row else None
            versus = f"{row['dense_score']:.2f}% ({row['dense_params']:,}, {dense_latency:.2f}x)" if row else "-"
            winner = row["winner"] if row else "-"
            lines.append(
                f"| {method} | {level:g} | {tuned['nonzero_params']:,} | {tuned['storage_bytes']:,} B | {raw['score']:.2f}% | "
                f"{tuned['score']:.2f}% | {timing['ratio_to_baseline']:.2f}x{noisy} | {versus} | {winner} |"
            )
    spots = ", ".join(
        f"{m}: {s['level']:g} ({s['score']:.2f}%, {latency[point_key(m, s['level'], True)]['ratio_to_baseline']:.2f}x)" if s else f"{m}: none"
        for m, s in result["sweet_spots"].items()
    )
    base_ms = latency["baseline-0-raw"]["median_ms"]
    lines += [
        "",
        f"Sweet spots within {result['tolerance']:g} points (accuracy, latency): {spots}. Baseline latency {base_ms:.3f} ms.",
        "",
        "![sweep](benchmarks/figures/sweep-digits-cnn.png)",
    ]
    return "\n".join(lines)
