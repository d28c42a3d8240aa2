"""Quantization on the digits CNN (static) and MLP (dynamic), measured in ONNX Runtime."""

from __future__ import annotations

from benchmarks.common import result_row, run_stages, table
from edgecompress.orchestration.pipeline.stages import Qat, Quantize

RECIPES = [
    ("digits-cnn", "CNN static int8, per-channel, minmax, QOperator", [Quantize()]),
    ("digits-cnn", "CNN static int8, per-channel, percentile", [Quantize(calibration="percentile")]),
    ("digits-cnn", "CNN static int8, per-channel, entropy", [Quantize(calibration="entropy")]),
    ("digits-cnn", "CNN static int8, per-channel, mse", [Quantize(calibration="mse")]),
    ("digits-cnn", "CNN static int8, per-channel, minmax, QDQ", [Quantize(format="qdq")]),
    ("digits-cnn", "CNN static int8, per-tensor, minmax", [Quantize(per_channel=False)]),
    ("digits-cnn", "CNN QAT 4-bit (16 epochs, distillation) + static int8", [Qat(bits=4), Quantize()]),
    ("digits-cnn", "CNN QAT ternary (16 epochs, distillation) + static int8", [Qat(bits="ternary"), Quantize()]),
    ("digits-mlp", "MLP dynamic int8, per-channel", [Quantize(mode="dynamic")]),
    ("digits-mlp", "MLP static int8, per-channel", [Quantize()]),
    ("digits-mlp", "MLP fp16", [Quantize(mode="fp16")]),
    ("digits-mlp", "MLP int4 weight-only, block 32 (MatMulNBits)", [Quantize(mode="int4")]),
]


def run() -> dict:
    return {"rows": [result_row(label, run_stages(model, stages)) for model, label, stages in RECIPES]}


def markdown(result: dict) -> str:
    return "\n".join(
        [
            "## Quantization (digits CNN and MLP, no pruning; seed 0)",
            "",
            "Change = int8 ONNX accuracy - fp32 ONNX accuracy, both computed by ONNX Runtime on the test split; size and",
            "latency ratios against the fp32 ONNX file of the same model, timed in the same run (1 thread).",
            "",
            *table(result["rows"]),
            "",
            "An int8 file cannot reach 4x: per-channel float scales, int32 biases and the graph itself stay.",
            "Quantized files are compacted (short names for scales, zero points and values; one shared zero point",
            "instead of one per channel; default attributes dropped): ~2,000 B less on the CNN, same outputs bit for bit.",
            "QAT rows ship as int8 ONNX (the runnable file is int8-sized); their packed .ecz files store the",
            "low-bit weights near their entropy. fp16 and int4 are smaller but not faster on this CPU (no fp16",
            "units; MatMulNBits pays off on large layers at batch 1, not on this small MLP).",
        ]
    )
