"""Pruning on the digits CNN: each pattern with its fine-tuning, measured on the exported ONNX file."""

from __future__ import annotations

from benchmarks.common import result_row, run_stages, table
from edgecompress.pipeline.stages import Finetune, Prune

RECIPES = [
    ("one-shot global magnitude 90%, no fine-tune", [Prune(pattern="unstructured", criterion="l1", scope="global", amount=0.9)]),
    (
        "gradual (cubic) global magnitude 90% + distillation, 40 epochs",
        [Prune(pattern="unstructured", criterion="l1", scope="global", amount=0.9, schedule="gradual", steps=10, epochs=40, lr=2e-3, distill=0.5)],
    ),
    (
        "channels -50% (Torch-Pruning, L2) + 24 epochs fine-tune with distillation",
        [Prune(pattern="channel", amount=0.5), Finetune(epochs=24, lr=2e-3, distill=0.5)],
    ),
    (
        "channels -50%, Taylor, 2 iterative rounds of 8 epochs",
        [Prune(pattern="channel", criterion="taylor", amount=0.5, schedule="iterative", steps=2, epochs=8, lr=2e-3)],
    ),
    (
        "8x8 blocks -75% (conv2, fc1), 3 iterative rounds of 6 epochs",
        [Prune(pattern="block", block=(8, 8), layers=("conv2", "fc1"), amount=0.75, schedule="iterative", steps=3, epochs=6, lr=1e-3)],
    ),
    ("2:4 Wanda (conv2, fc1) + 16 epochs fine-tune", [Prune(pattern="nm", criterion="wanda", layers=("conv2", "fc1")), Finetune(epochs=16, lr=1e-3)]),
    ("unstructured 80% movement, gradual 12 epochs", [Prune(pattern="unstructured", criterion="movement", amount=0.8, schedule="gradual", epochs=12, lr=2e-3)]),
]


def run() -> dict:
    return {"rows": [result_row(label, run_stages("digits-cnn", stages)) for label, stages in RECIPES]}


def markdown(result: dict) -> str:
    rows = result["rows"]
    base = rows[0]["baseline_score"]
    return "\n".join(
        [
            "## Pruning (digits CNN, fp32 ONNX; seed 0)",
            "",
            f"Dense baseline: {base:.2f}% test accuracy, 53,002 parameters, 339,328 MACs. Every row is one `compress` run:",
            "accuracy by ONNX Runtime on the exported file, size on disk, latency ratios against the dense baseline",
            "timed in the same run (1 thread). Masked (unstructured, block, N:M) models are stored densely in ONNX, so",
            "their files are not smaller and they are not faster there; only removed channels shrink the file and the",
            "latency. Non-zero counts show what a sparse format or kernel could exploit.",
            "",
            *table(rows),
        ]
    )
