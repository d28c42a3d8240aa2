"""The demo pipeline over several seeds: accuracy, file and packed sizes, ONNX Runtime latency, baseline vs final."""

from __future__ import annotations

import statistics
import tempfile
import time

from edgecompress.orchestration.demo import run_demo

SEEDS = (0, 1, 2)


def run() -> dict:
    rows = []
    for seed in SEEDS:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = run_demo(out, seed=seed)
            seconds = time.perf_counter() - start
        base, final = result.baseline, result.final
        rows.append(
            {
                "seed": seed,
                "baseline_score": base.score,
                "final_score": final.score,
                "baseline_bytes": base.artifact_bytes,
                "final_bytes": final.artifact_bytes,
                "size_ratio": base.artifact_bytes / final.artifact_bytes,
                "final_storage": final.storage_bytes,
                "storage_ratio": base.artifact_bytes / final.storage_bytes,
                "b1_ratio": final.latency[1].median_ms / base.latency[1].median_ms,
                "b256_ratio": final.latency[256].median_ms / base.latency[256].median_ms,
                "b256_base_ms": base.latency[256].median_ms,
                "b256_final_ms": final.latency[256].median_ms,
                "b256_spread": max(base.latency[256].spread, final.latency[256].spread),
                "seconds": seconds,
            }
        )
    return {"rows": rows}


def markdown(result: dict) -> str:
    lines = [
        "## Demo pipeline (digits CNN: channels -50%, distilled fine-tune, ternary QAT, static int8)",
        "",
        "Accuracy on the fixed test split, computed by ONNX Runtime on each file; size = bytes on disk (packed =",
        "the final ONNX file in edgecompress's .ecz format, `storage_bytes`, against the baseline's ONNX file);",
        "latency = ONNX Runtime, 1 thread, median of interleaved repeats in the same run (ratio final / baseline).",
        "",
        "| seed | baseline acc | final acc | baseline file | final file | smaller | packed | smaller | latency b1 | latency b256 | b256 abs (base -> final) | whole run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        noisy = " (spread > 20%)" if r["b256_spread"] > 0.2 else ""
        lines.append(
            f"| {r['seed']} | {r['baseline_score']:.2f}% | {r['final_score']:.2f}% | {r['baseline_bytes']:,} B | "
            f"{r['final_bytes']:,} B | {r['size_ratio']:.2f}x | {r['final_storage']:,} B | {r['storage_ratio']:.1f}x | {r['b1_ratio']:.2f}x | {r['b256_ratio']:.2f}x{noisy} | "
            f"{r['b256_base_ms']:.3f} -> {r['b256_final_ms']:.3f} ms | {r['seconds']:.0f} s |"
        )
    ratios = [r["b256_ratio"] for r in result["rows"]]
    drops = [r["baseline_score"] - r["final_score"] for r in result["rows"]]
    lines += [
        "",
        f"Worst accuracy drop {max(drops):.2f} points; batch-256 latency {statistics.median(ratios):.2f}x of the "
        "baseline (median over seeds). At batch 1 this 53k-parameter model is dominated by ONNX Runtime's per-call "
        "overhead (~9 us), so compression cannot make it faster there.",
    ]
    return "\n".join(lines)
