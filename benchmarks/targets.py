"""int8 on every CPU class: which formats are exact where, and what the portable format costs.

The demo's QAT model (seed 0) is quantized in each int8 format ONNX Runtime offers; each file runs on every
CPU class this machine reaches (itself, qemu's Haswell for AVX2 without VNNI, qemu's Cortex-A53 for arm64)
and is scored there, its outputs compared with this machine's, its integer nodes recomputed exactly. The
demo (portable) and the same run with `--target x86-vnni` give the cost of the portable format; so do the
two int8 routes of all-MiniLM-L6-v2. Latency is measured only on this machine: emulated time is not one.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgecompress.core.tasks.digits import digits_task
from edgecompress.orchestration.demo import run_demo
from edgecompress.orchestration.verify import verify
from edgecompress.runtime.feeds import input_feeds
from edgecompress.runtime.latency import measure_latencies
from edgecompress.runtime.targets import host_cpu

FORMATS = {  # label -> ONNX Runtime quantize_static settings
    "uint8 x int8, weights +-127, QOperator": dict(weight_type=QuantType.QInt8, quant_format=QuantFormat.QOperator),
    "uint8 x int8, weights +-127, QDQ": dict(weight_type=QuantType.QInt8, quant_format=QuantFormat.QDQ),
    "uint8 x int8, weights +-64 (portable), QOperator": dict(weight_type=QuantType.QInt8, quant_format=QuantFormat.QOperator, reduce_range=True),
    "uint8 x uint8, QOperator": dict(weight_type=QuantType.QUInt8, quant_format=QuantFormat.QOperator),
    "uint8 x uint8, QDQ": dict(weight_type=QuantType.QUInt8, quant_format=QuantFormat.QDQ),
    "int8 x int8, QOperator": dict(weight_type=QuantType.QInt8, activation_type=QuantType.QInt8, quant_format=QuantFormat.QOperator),
    "int8 x int8, QDQ": dict(weight_type=QuantType.QInt8, activation_type=QuantType.QInt8, quant_format=QuantFormat.QDQ),
}


class _Reader(CalibrationDataReader):
    def __init__(self, feeds):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)


def run() -> dict:
    task = digits_task(0)
    with tempfile.TemporaryDirectory() as work, contextlib.redirect_stderr(io.StringIO()):
        work = Path(work)
        demo = {target: run_demo(work / target, seed=0, target=target) for target in ("portable", "x86-vnni")}
        demos = {target: _classes(verify(work / target, "portable")) for target in demo}
        qat = work / "portable" / "stages" / "03-qat.onnx"
        prepared = work / "prepared.onnx"
        quant_pre_process(str(qat), str(prepared), skip_symbolic_shape=True)
        formats, paths = {}, {}
        for number, (label, given) in enumerate(FORMATS.items()):
            settings = dict(given)
            folder = work / f"format{number}"
            folder.mkdir()
            with contextlib.redirect_stdout(io.StringIO()):
                quantize_static(str(prepared), str(folder / "final.onnx"), _Reader(list(input_feeds(task.train_loader, qat))[:16]),
                                per_channel=True, activation_type=settings.pop("activation_type", QuantType.QUInt8), **settings)
            (folder / "recipe.yaml").write_text((work / "portable" / "recipe.yaml").read_text())
            formats[label] = _classes(verify(folder, "portable"))
            paths[label] = folder / "final.onnx"
        latencies = measure_latencies([work / "portable" / "baseline.onnx", *paths.values()], (1, 8, 8), (256,))
    base = latencies[0][256].median_ms
    for label, latency in zip(paths, latencies[1:]):
        formats[label]["latency"] = latency[256].median_ms / base
    return {
        "host": host_cpu().describe(),
        "demo": {t: {"score": r.final.score, "drop": r.baseline.score - r.final.score, "bytes": r.final.artifact_bytes,
                     "storage": r.final.storage_bytes, "latency": r.final.latency[256].median_ms / r.baseline.latency[256].median_ms,
                     "classes": demos[t]} for t, r in demo.items()},
        "formats": formats,
    }


def _classes(report) -> dict:
    row = {r.cpu_class: {"score": r.score, "identical": r.max_output_difference == 0.0, "off": r.exactness.off_fraction} for r in report.results}
    row["unreachable"] = sorted(report.unreachable)
    return row


def _cell(result: dict | None) -> str:
    if result is None:
        return "not reachable here"
    if result["identical"] and result["off"] == 0.0:
        return f"exact ({result['score']:.2f}%)"
    return f"**{result['score']:.2f}%**, {100 * result['off']:.1f}% of integer outputs off"


CLASSES = ("x86-vnni", "x86-avx2", "arm64")


def _table(head: list[str], rows: list[tuple[list[str], dict]]) -> list[str]:
    """A markdown table: the given columns, then one cell per CPU class."""
    lines = ["| " + " | ".join(head + list(CLASSES)) + " |", "|" + "---|" * (len(head) + len(CLASSES))]
    return lines + ["| " + " | ".join(cells + [_cell(classes.get(c)) for c in CLASSES]) + " |" for cells, classes in rows]


def markdown(result: dict) -> str:
    demo = [([t, f"{r['drop']:.2f}", f"{r['bytes']:,} B", f"{r['storage']:,} B", f"{r['latency']:.3f}x"], r["classes"]) for t, r in result["demo"].items()]
    formats = [([label, f"{r['latency']:.2f}x"], r) for label, r in result["formats"].items()]
    return "\n".join([
        "## int8 on every CPU class (targets)",
        "",
        f"Measured on {result['host']}; x86-avx2 is qemu's Haswell (AVX2, no VNNI), arm64 qemu's Cortex-A53 (NEON,",
        "no dot product) with Debian's arm64 Python and PyPI's aarch64 onnxruntime (`make emulators`); x86-vnni",
        "only where the host has it. Each cell: accuracy on the 360 test digits computed from the outputs on that",
        "CPU, and whether every output equals this machine's and every integer node is exact (docs/targets.md).",
        "Latency: this machine only, ONNX Runtime, 1 thread, batch 256, ratio to the fp32 baseline.",
        "",
        "### The demo, portable (default) and x86-vnni targets, seed 0",
        "",
        *_table(["target", "accuracy drop", "ONNX file", "packed", "latency b256"], demo),
        "",
        "### ONNX Runtime's int8 formats, the demo's ternary QAT model (seed 0)",
        "",
        *_table(["format", "latency b256"], formats),
    ])
