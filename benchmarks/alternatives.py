"""edgecompress against what a user would reach for instead, on the digits CNN, in one run.

- PyTorch built-ins: torch.nn.utils.prune global L1 90% + 8 epochs fine-tuning, then prune.remove.
- Torch-Pruning alone: 50% of channels (L2 group importance) + 16 epochs plain fine-tuning.
- ONNX Runtime's quantizer alone: quantize_static and quantize_dynamic with their default settings.
- edgecompress: the demo recipe, and channels -50% + ternary QAT + int8 (what `fit --max-size 10KB` picks).
Every model is exported to ONNX and scored by ONNX Runtime; all files are timed together, interleaved.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from pathlib import Path

import torch
import torch_pruning as tp
from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
from torch.nn.utils import prune

from benchmarks.common import MODELS, run_stages, trained_state
from edgecompress.delivery import pack
from edgecompress.evaluate import score_onnx
from edgecompress.export import export_onnx
from edgecompress.measure.latency import measure_latencies
from edgecompress.pipeline.stages import Finetune, Prune, Qat, Quantize, default_recipe
from edgecompress.quantize.onnx_static import _LoaderReader
from edgecompress.seeding import seed_everything
from edgecompress.tasks.digits import digits_task


def _plain_finetune(model, task, epochs, lr=1e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in task.train_loader:
            optimizer.zero_grad()
            task.loss_fn(model(x), y).backward()
            optimizer.step()
    return model.eval()


def _baseline():
    model = MODELS["digits-cnn"]()
    model.load_state_dict(trained_state("digits-cnn"))
    return model.eval()


def run() -> dict:
    task = digits_task(0)
    example = task.example_input()
    rows: list[tuple[str, Path, float]] = []  # (label, onnx file, seconds to compress)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        base_path = export_onnx(_baseline(), example, work / "baseline.onnx")
        rows.append(("dense baseline (fp32)", base_path, 0.0))

        seed_everything(0)
        start = time.perf_counter()
        model = _baseline()
        layers = [(m, "weight") for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=0.9)
        _plain_finetune(model, task, 8)
        for module, name in layers:
            prune.remove(module, name)
        rows.append(("PyTorch prune: global L1 90% + 8 ep fine-tune", export_onnx(model, example, work / "torch_prune.onnx"), time.perf_counter() - start))

        seed_everything(0)
        start = time.perf_counter()
        model = _baseline()
        pruner = tp.pruner.BasePruner(model, example, importance=tp.importance.GroupMagnitudeImportance(p=2), pruning_ratio=0.5, ignored_layers=[model.fc2])
        pruner.step()
        _plain_finetune(model, task, 16)
        rows.append(("Torch-Pruning: channels -50% + 16 ep fine-tune", export_onnx(model, example, work / "tp.onnx"), time.perf_counter() - start))

        cwd = os.getcwd()
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # ORT's quantizer advises pre-processing on the root logger
        with contextlib.redirect_stdout(io.StringIO()):
            os.chdir(work)
            try:
                start = time.perf_counter()
                quantize_static(str(base_path), str(work / "ort_static.onnx"), _LoaderReader("input", task.train_loader, 16))
                rows.append(("ONNX Runtime quantize_static (defaults: QDQ, per-tensor)", work / "ort_static.onnx", time.perf_counter() - start))
                start = time.perf_counter()
                quantize_dynamic(str(base_path), str(work / "ort_dynamic.onnx"), weight_type=QuantType.QInt8)
                rows.append(("ONNX Runtime quantize_dynamic (defaults)", work / "ort_dynamic.onnx", time.perf_counter() - start))
            finally:
                os.chdir(cwd)
                root.setLevel(level)

        for label, stages in (
            ("edgecompress demo: channels -50% + distilled fine-tune + static int8", default_recipe()),
            (
                "edgecompress: channels -50% + ternary QAT + static int8",
                [Prune(pattern="channel", amount=0.5), Finetune(epochs=24, lr=2e-3, distill=0.5), Qat(bits="ternary"), Quantize()],
            ),
        ):
            start = time.perf_counter()
            result = run_stages("digits-cnn", stages, keep_dir=work / f"ec{len(rows)}")
            rows.append((label, result.out_dir / "final.onnx", time.perf_counter() - start))

        latencies = measure_latencies([path for _, path, _ in rows], tuple(example.shape[1:]))
        table = []
        for (label, path, seconds), latency in zip(rows, latencies):
            packed = pack(path, path.with_suffix(".bench.ecz"))
            table.append(
                {
                    "label": label,
                    "score": score_onnx(path, task),
                    "bytes": path.stat().st_size,
                    "packed": packed.packed_bytes,
                    "b1": latency[1].median_ms,
                    "b256": latency[256].median_ms,
                    "spread": max(latency[1].spread, latency[256].spread),
                    "seconds": seconds,
                }
            )
    return {"rows": table}


def markdown(result: dict) -> str:
    rows = result["rows"]
    base = rows[0]
    lines = [
        "## edgecompress against the alternatives (digits CNN, seed 0, one run)",
        "",
        "Each row's accuracy is computed by ONNX Runtime on its ONNX file (test split); sizes are files on disk",
        "(packed = the same file in edgecompress's .ecz format, for comparison); latency is ONNX Runtime, 1 thread,",
        "all files timed together, as a ratio to the dense baseline with the absolute median beside it.",
        "",
        "| tool / recipe | accuracy | ONNX file | smaller | packed | smaller | latency b1 | latency b256 | compression time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        noisy = " (spread > 20%)" if r["spread"] > 0.2 else ""
        lines.append(
            f"| {r['label']} | {r['score']:.2f}% ({r['score'] - base['score']:+.2f}) | {r['bytes']:,} B | "
            f"{base['bytes'] / r['bytes']:.2f}x | {r['packed']:,} B | {base['bytes'] / r['packed']:.1f}x | "
            f"{r['b1'] / base['b1']:.2f}x ({r['b1'] * 1000:.1f} us) | {r['b256'] / base['b256']:.2f}x ({r['b256']:.3f} ms){noisy} | "
            f"{r['seconds']:.1f} s |"
        )
    lines += [
        "",
        "Masks from torch.nn.utils.prune leave a dense file: no smaller, no faster. ONNX Runtime's default static",
        "quantization is per-tensor; edgecompress uses per-channel weights and the smaller QOperator graph.",
    ]
    return "\n".join(lines)
