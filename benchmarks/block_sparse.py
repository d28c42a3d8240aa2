"""Block-sparse Linear: does a 90%-block-sparse 1024x1024 layer beat the dense one, and the fastest dense one?

Baselines: torch eager fp32 (MKL) and ONNX Runtime fp32 (MLAS), which on this CPU is the faster dense kernel
(FINDINGS 2), so a sparse speedup is only real if it holds against ORT. One thread throughout. Each round
times every variant at every batch size (ORT through `measure_latencies`, one round per call), so drift on
the shared machine hits all of them alike; the reported time is the median of the per-round medians.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from edgecompress.onnx import export_onnx
from edgecompress.runtime.latency import measure_latencies
from edgecompress.techniques.prune.block_sparse import BlockSparseLinear

FEATURES = 1024
BATCHES = (1, 16, 64, 256)
ROUNDS = 7
MIN_ROUND_SECONDS = 0.02
WIN, LOSS = 1.05, 0.95  # speedups between these are within this machine's run-to-run drift: a tie

# (key, block, sparsity): the main case first; the others show what changes with block shape and sparsity.
VARIANTS = [
    ("main", (8, 8), 0.9),  # the block FINDINGS recommends (BSR layout)
    ("coarse", (32, 32), 0.9),  # gather layout
    ("lower", (8, 8), 0.75),  # the default threshold of `convert_block_sparse`
]


def pruned_linear(block: tuple[int, int], sparsity: float, seed: int = 0) -> nn.Linear:
    """A 1024x1024 Linear with its lowest-L1 blocks (`sparsity` of them) set to zero."""
    torch.manual_seed(seed)
    layer = nn.Linear(FEATURES, FEATURES)
    bh, bw = block
    with torch.no_grad():
        scores = layer.weight.abs().reshape(FEATURES // bh, bh, FEATURES // bw, bw).sum(dim=(1, 3))
        keep = torch.zeros(scores.numel(), dtype=torch.bool)
        keep[scores.flatten().topk(round(scores.numel() * (1 - sparsity))).indices] = True
        mask = keep.reshape(scores.shape).repeat_interleave(bh, 0).repeat_interleave(bw, 1)
        layer.weight.mul_(mask)
    return layer.eval()


def run() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run()
    finally:
        torch.set_num_threads(threads)


def _run() -> dict:
    denses = {key: pruned_linear(block, sparsity) for key, block, sparsity in VARIANTS}
    sparses = {key: BlockSparseLinear.from_linear(denses[key], block) for key, block, _ in VARIANTS}
    # Dense time does not depend on the weight values, so one dense layer and one ORT model serve every variant.
    dense = denses["main"]
    timed = {"torch": dense, **sparses}
    inputs = {b: torch.randn(b, FEATURES, generator=torch.Generator().manual_seed(b)) for b in BATCHES}
    with torch.inference_mode():
        errors = {k: max(_max_rel_error(s(x), denses[k](x)) for x in inputs.values()) for k, s in sparses.items()}
    per_round: dict[str, dict[int, list[float]]] = {k: {b: [] for b in BATCHES} for k in (*timed, "ort")}
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(dense, inputs[1], Path(tmp) / "dense.onnx")
        calls = {k: {b: _calls_per_round(m, inputs[b]) for b in BATCHES} for k, m in timed.items()}
        for _ in range(ROUNDS):
            ort = measure_latencies(
                [path], (FEATURES,), batch_sizes=BATCHES, rounds=1, min_round_seconds=MIN_ROUND_SECONDS
            )[0]
            for b in BATCHES:
                per_round["ort"][b].append(ort[b].median_ms)
                for key, module in timed.items():
                    per_round[key][b].append(_round_median_ms(module, inputs[b], calls[key][b]))
    return {
        "ms": {k: {b: statistics.median(v) for b, v in rounds.items()} for k, rounds in per_round.items()},
        "variants": {
            key: {"block": block, "sparsity": sparses[key].sparsity, "layout": sparses[key].layout,
                  "max_rel_error": errors[key]}
            for key, block, _ in VARIANTS
        },
    }


def _max_rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest output magnitude."""
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def _calls_per_round(module: nn.Module, x: torch.Tensor) -> int:
    with torch.inference_mode():
        module(x)  # warm-up
        start = time.perf_counter()
        module(x)
        once = max(time.perf_counter() - start, 1e-6)
    return max(1, min(200, int(MIN_ROUND_SECONDS / once)))


def _round_median_ms(module: nn.Module, x: torch.Tensor, calls: int) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(calls):
            start = time.perf_counter()
            module(x)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _table(ms: dict, key: str) -> list[str]:
    lines = [
        "| batch | dense torch ms | ORT dense ms | block-sparse ms | speedup vs torch dense | speedup vs ORT dense |",
        "|---|---|---|---|---|---|",
    ]
    for b in BATCHES:
        torch_ms, ort_ms, sparse_ms = ms["torch"][b], ms["ort"][b], ms[key][b]
        lines.append(
            f"| {b} | {torch_ms:.3f} | {ort_ms:.3f} | {sparse_ms:.3f} | "
            f"{torch_ms / sparse_ms:.2f}x | {ort_ms / sparse_ms:.2f}x |"
        )
    return lines


def _verdict(ms: dict, key: str) -> str:
    """Where the sparse path loses or only ties, against each baseline, in words."""
    parts = []
    for base, label in (("torch", "torch dense"), ("ort", "ORT dense")):
        speedups = {b: ms[base][b] / ms[key][b] for b in BATCHES}
        loses = [str(b) for b, s in speedups.items() if s < LOSS]
        ties = [str(b) for b, s in speedups.items() if LOSS <= s < WIN]
        if loses:
            parts.append(f"loses to {label} at batch {', '.join(loses)}")
        if ties:
            parts.append(f"only ties {label} at batch {', '.join(ties)}")
    if not parts:
        return f"It beats both dense baselines by at least {WIN:.2f}x at every batch size measured."
    tie_note = any(p.startswith("only ties") for p in parts)
    note = f" (a tie: speedup within {LOSS:.2f}x-{WIN:.2f}x, this machine's run-to-run drift)" if tie_note else ""
    return f"The sparse path {'; '.join(parts)}{note}."


def _describe(v: dict) -> str:
    bh, bw = v["block"]
    return (
        f"{bh}x{bw} blocks, {v['sparsity']:.1%} zero, {v['layout']} layout, "
        f"max relative error {v['max_rel_error']:.1e}"
    )


def markdown(result: dict) -> str:
    ms, variants = result["ms"], result["variants"]
    lines = [
        "## Block-sparse Linear",
        "",
        f"A {FEATURES}x{FEATURES} fp32 Linear with its lowest-L1 blocks removed, run as `BlockSparseLinear` against "
        "the same layer dense in torch eager and in ONNX Runtime (the faster dense kernel on this CPU). One thread, "
        f"median of per-round medians over {ROUNDS} interleaved rounds; relative error = max |diff| / max |output| "
        "vs the dense layer. The sparse layer is a torch-only inference form (no ONNX export, no backward in "
        "the BSR layout), so the ORT column is what a deployment without it gets.",
        "",
        f"**Main case: {_describe(variants['main'])}.**",
        "",
        *_table(ms, "main"),
        "",
        _verdict(ms, "main"),
        "",
        f"**Coarser blocks: {_describe(variants['coarse'])}.** Same dense timings (dense time does not depend "
        "on the weight values). Coarser blocks remove weights less selectively, so they usually cost more "
        "accuracy before fine-tuning.",
        "",
        *_table(ms, "coarse"),
        "",
        _verdict(ms, "coarse"),
        "",
        f"**Lower sparsity: {_describe(variants['lower'])}** (the default threshold of `convert_block_sparse`, "
        "which compares against torch dense only).",
        "",
        *_table(ms, "lower"),
        "",
        _verdict(ms, "lower"),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(run()))
