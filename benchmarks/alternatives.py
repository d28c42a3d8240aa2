"""edgecompress against what a user would reach for instead, per task (digits CNN and MLP), in one run each.

- PyTorch built-ins: torch.nn.utils.prune global L1 90% + 8 epochs fine-tuning, then prune.remove.
- PyTorch's recommended int8 path today: torchao `quantize_` with int8 dynamic activations and int8 weights
  (torch.ao.quantization is deprecated). It has no ONNX export: it runs in PyTorch, so its latency is timed
  in PyTorch against the fp32 model in PyTorch, and its size is the saved state_dict.
- Torch-Pruning alone: 50% of channels/neurons (L2 group importance) + 16 epochs plain fine-tuning.
- ONNX Runtime's quantizer alone: quantize_static and quantize_dynamic with their default settings.
- edgecompress: the recipes a user of this task would pick (the demo's for the CNN, examples/digits-mlp.yaml's
  for the MLP) and the smallest one `fit` finds.
Every ONNX model is scored by ONNX Runtime on the test split; all ONNX files of a task are timed together,
interleaved; a Pareto chart (packed size vs accuracy) per task is written to benchmarks/figures/.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_pruning as tp
from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
from torch.nn.utils import prune

from benchmarks.common import MODELS, run_stages, trained_state
from benchmarks.pareto import pareto_chart
from edgecompress.core.evaluate import score_onnx
from edgecompress.core.evaluate.scoring import score_torch
from edgecompress.core.measure.macs import count_macs
from edgecompress.core.measure.params import count_nonzero_params, count_params
from edgecompress.core.seeding import seed_everything
from edgecompress.core.tasks.digits import digits_task
from edgecompress.delivery import pack
from edgecompress.onnx import export_onnx
from edgecompress.orchestration.pipeline.stages import Finetune, Prune, Qat, Quantize, default_recipe
from edgecompress.runtime.latency import measure_latencies
from edgecompress.techniques.quantize.onnx_static import _LoaderReader

TASKS = ("digits-cnn", "digits-mlp")
CLASSIFIER = {"digits-cnn": "fc2", "digits-mlp": "fc3"}
EDGECOMPRESS_RECIPES = {
    "digits-cnn": [
        (
            "edgecompress: channels -50% + distilled fine-tune + static int8 (no QAT)",
            lambda: [Prune(pattern="channel", amount=0.5), Finetune(epochs=24, lr=2e-3, distill=0.5), Quantize()],
        ),
        ("edgecompress demo (default recipe): channels -50% + distilled fine-tune + ternary QAT + static int8", default_recipe),
    ],
    "digits-mlp": [
        (
            "edgecompress examples/digits-mlp.yaml: 2:4 Wanda + distilled fine-tune + dynamic int8",
            lambda: [Prune(pattern="nm", n=2, m=4, criterion="wanda"), Finetune(epochs=16, lr=5e-4, distill=0.5), Quantize(mode="dynamic")],
        ),
        (
            "edgecompress: neurons -50% + distilled fine-tune + dynamic int8",
            lambda: [Prune(pattern="channel", amount=0.5), Finetune(epochs=24, lr=2e-3, distill=0.5), Quantize(mode="dynamic")],
        ),
        (
            "edgecompress: neurons -50% + ternary QAT + dynamic int8",
            lambda: [Prune(pattern="channel", amount=0.5), Finetune(epochs=24, lr=2e-3, distill=0.5), Qat(bits="ternary"), Quantize(mode="dynamic")],
        ),
    ],
}


@dataclass
class Row:
    label: str
    path: Path | None  # the ONNX file; None for a model that only runs in PyTorch
    seconds: float
    params: int
    nonzero: int
    macs: int
    torch_model: torch.nn.Module | None = None


def _plain_finetune(model, task, epochs, lr=1e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in task.train_loader:
            optimizer.zero_grad()
            task.loss_fn(model(x), y).backward()
            optimizer.step()
    return model.eval()


def _baseline(name: str):
    model = MODELS[name]()
    model.load_state_dict(trained_state(name))
    return model.eval()


def _counts(model, example) -> dict:
    return {"params": count_params(model), "nonzero": count_nonzero_params(model), "macs": count_macs(model, example)[0]}


def run() -> dict:
    return {name: run_task(name) for name in TASKS}


def run_task(name: str) -> dict:
    task = digits_task(0)
    example = task.example_input()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        base_model = _baseline(name)
        base_path = export_onnx(base_model, example, work / "baseline.onnx")
        base_counts = _counts(base_model, example)
        rows = [Row("dense baseline (fp32)", base_path, 0.0, **base_counts)]

        seed_everything(0)
        start = time.perf_counter()
        model = _baseline(name)
        layers = [(m, "weight") for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=0.9)
        _plain_finetune(model, task, 8)
        for module, weight in layers:
            prune.remove(module, weight)
        path = export_onnx(model, example, work / "torch_prune.onnx")
        rows.append(Row("PyTorch prune: global L1 90% + 8 ep fine-tune", path, time.perf_counter() - start, **_counts(model, example)))

        rows.append(_torchao_row(name, example, work))

        seed_everything(0)
        start = time.perf_counter()
        model = _baseline(name)
        pruner = tp.pruner.BasePruner(
            model, example, importance=tp.importance.GroupMagnitudeImportance(p=2), pruning_ratio=0.5,
            ignored_layers=[getattr(model, CLASSIFIER[name])],
        )
        pruner.step()
        _plain_finetune(model, task, 16)
        path = export_onnx(model, example, work / "tp.onnx")
        rows.append(Row("Torch-Pruning: channels -50% + 16 ep fine-tune", path, time.perf_counter() - start, **_counts(model, example)))

        rows += _ort_quantizer_rows(base_path, task, work, base_counts)

        for label, stages in EDGECOMPRESS_RECIPES[name]:
            start = time.perf_counter()
            result = run_stages(name, stages(), keep_dir=work / f"ec{len(rows)}")
            final = result.final
            rows.append(Row(label, result.out_dir / "final.onnx", time.perf_counter() - start, final.params, final.nonzero_params, final.macs))

        onnx_rows = [r for r in rows if r.path is not None]
        latencies = dict(zip((id(r) for r in onnx_rows), measure_latencies([r.path for r in onnx_rows], tuple(example.shape[1:]))))
        torch_ratios = _torch_latency_ratios(base_model, rows, example)
        table = []
        for r in rows:
            entry = {"label": r.label, "params": r.params, "nonzero": r.nonzero, "macs": r.macs, "seconds": r.seconds}
            if r.path is not None:
                latency = latencies[id(r)]
                packed = pack(r.path, r.path.with_suffix(".bench.ecz"))
                entry.update(
                    runtime="onnxruntime", score=score_onnx(r.path, task), bytes=r.path.stat().st_size, packed=packed.packed_bytes,
                    b1=latency[1].median_ms, b256=latency[256].median_ms, spread=max(latency[1].spread, latency[256].spread),
                )
            else:
                entry.update(runtime="pytorch", score=score_torch(r.torch_model, task), bytes=_saved_bytes(r.torch_model, work), packed=None,
                             **torch_ratios[r.label])
            table.append(entry)
    figure = pareto_chart(
        f"alternatives-{name}",
        [(e["label"], e["packed"] or e["bytes"], e["score"]) for e in table],
        x_label="packed size (bytes, log scale; torchao: saved state_dict)",
        y_label="test accuracy (%)",
        title=f"{name}: size vs accuracy, every tool (BENCHMARKS.md)",
    )
    return {"rows": table, "figure": figure}


def _torchao_row(name, example, work) -> Row:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    start = time.perf_counter()
    model = _baseline(name)
    counts = _counts(model, example)
    quantize_(model, Int8DynamicActivationInt8WeightConfig())  # Linear layers only: torchao's default filter
    return Row("PyTorch-recommended int8: torchao int8 dynamic activations + int8 weights (runs in PyTorch)", None,
               time.perf_counter() - start, torch_model=model, **counts)


def _ort_quantizer_rows(base_path: Path, task, work: Path, counts: dict) -> list[Row]:
    rows = []
    cwd = os.getcwd()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ORT's quantizer advises pre-processing on the root logger
    with contextlib.redirect_stdout(io.StringIO()):
        os.chdir(work)
        try:
            start = time.perf_counter()
            quantize_static(str(base_path), str(work / "ort_static.onnx"), _LoaderReader("input", task.train_loader, 16))
            rows.append(Row("ONNX Runtime quantize_static (defaults: QDQ, per-tensor)", work / "ort_static.onnx", time.perf_counter() - start, **counts))
            start = time.perf_counter()
            quantize_dynamic(str(base_path), str(work / "ort_dynamic.onnx"), weight_type=QuantType.QInt8)
            rows.append(Row("ONNX Runtime quantize_dynamic (defaults)", work / "ort_dynamic.onnx", time.perf_counter() - start, **counts))
        finally:
            os.chdir(cwd)
            root.setLevel(level)
    return rows


def _saved_bytes(model, work: Path) -> int:
    path = work / "torch_model.pt"
    torch.save(model.state_dict(), path)
    return path.stat().st_size


def _torch_latency_ratios(base_model, rows: list[Row], example, rounds: int = 7) -> dict[str, dict]:
    """PyTorch-only rows: median latency (1 thread, interleaved with the fp32 model in PyTorch) and its ratio."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    try:
        for r in (r for r in rows if r.path is None):
            result = {}
            spreads = []
            for batch in (1, 256):
                x = torch.randn(batch, *example.shape[1:], generator=torch.Generator().manual_seed(0))
                times = {"fp32": [], "q": []}
                with torch.no_grad():
                    for model in (base_model, r.torch_model):
                        model(x)  # warm-up
                    for _ in range(rounds):
                        for key, model in (("fp32", base_model), ("q", r.torch_model)):
                            for _ in range(20 if batch == 1 else 3):
                                start = time.perf_counter()
                                model(x)
                                times[key].append((time.perf_counter() - start) * 1000)
                median = {k: statistics.median(v) for k, v in times.items()}
                quartiles = statistics.quantiles(times["q"], n=4)
                spreads.append((quartiles[2] - quartiles[0]) / median["q"])
                result[f"b{batch}"] = median["q"]
                result[f"b{batch}_ratio"] = median["q"] / median["fp32"]
            result["spread"] = max(spreads)
            out[r.label] = result
    finally:
        torch.set_num_threads(threads)
    return out


def markdown(result: dict) -> str:
    lines = [
        "## edgecompress against the alternatives (digits CNN and MLP, seed 0, one run per task)",
        "",
        "Each ONNX row's accuracy is computed by ONNX Runtime on its ONNX file (test split); sizes are files on disk",
        "(packed = the same file in edgecompress's .ecz format); latency is ONNX Runtime, 1 thread, all files of a",
        "task timed together, as a ratio to the dense baseline with the absolute median beside it. The torchao row",
        "runs in PyTorch (torchao has no ONNX export): its size is its saved state_dict, its accuracy is computed in",
        "PyTorch and its latency is a ratio to the fp32 model in PyTorch, timed together.",
    ]
    for name, task_result in result.items():
        rows = task_result["rows"]
        base = rows[0]
        lines += [
            "",
            f"### {name}",
            "",
            "| tool / recipe | accuracy | file | smaller | packed | smaller | params | non-zero | MACs | latency b1 | latency b256 | compression time |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            noisy = " (spread > 20%)" if r["spread"] > 0.2 else ""
            if r["runtime"] == "onnxruntime":
                latency = (f"{r['b1'] / base['b1']:.2f}x ({r['b1'] * 1000:.1f} us) | "
                           f"{r['b256'] / base['b256']:.2f}x ({r['b256']:.3f} ms){noisy}")
                packed = f"{r['packed']:,} B | {base['bytes'] / r['packed']:.1f}x"
            else:
                latency = (f"{r['b1_ratio']:.2f}x of PyTorch fp32 ({r['b1'] * 1000:.0f} us) | "
                           f"{r['b256_ratio']:.2f}x of PyTorch fp32 ({r['b256']:.3f} ms){noisy}")
                packed = "n/a | n/a"
            lines.append(
                f"| {r['label']} | {r['score']:.2f}% ({r['score'] - base['score']:+.2f}) | {r['bytes']:,} B | "
                f"{base['bytes'] / r['bytes']:.2f}x | {packed} | {r['params']:,} | {r['nonzero']:,} | {r['macs']:,} | "
                f"{latency} | {r['seconds']:.1f} s |"
            )
        lines += ["", f"![{name}: size vs accuracy]({task_result['figure']})"]
    lines += [
        "",
        "Masks from torch.nn.utils.prune leave a dense file: no smaller, no faster. ONNX Runtime's default static",
        "quantization is per-tensor; edgecompress uses per-channel weights and the smaller QOperator graph.",
        "torchao quantizes Linear layers only by default (the CNN's convolutions stay fp32) and, in eager PyTorch on",
        "this CPU, its int8 kernels are slower than fp32 at these sizes.",
    ]
    return "\n".join(lines)
