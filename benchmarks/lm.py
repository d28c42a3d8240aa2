"""Small language models (issue 20): edgecompress's decoder routes and pruning against what a user would pick
instead, every row measured side by side in one run on the built-in stdlib-coder.

Every artifact is an ONNX file with a key/value cache, run by ONNX Runtime (one thread). Perplexity, top-1
agreement and KL divergence to the original come from the same 64 held-out windows of 128 tokens, scored from
the file. Latency is timed for all files in one interleaved call: a decoding step at batch 1 with 127 cached
tokens (its inverse is decode tokens/s) and a 128-token prompt with an empty cache (the time to first token).

"What a user would pick instead":
- ONNX Runtime's `MatMulNBitsQuantizer` with its own configs (default/RTN, GPTQ, HQQ), on the same fp32 export
  with the tied output layer stored as a plain weight (the form ORT's quantizer can read; edgecompress's
  quantize stages make the same graph first), so every 4-bit row quantizes the same matrices;
- `onnxruntime-genai`'s model builder (`-p int4 -e cpu`) on the same Hugging Face directory: its own graph
  (GroupQueryAttention, fused norms) with the same input and cache names, so the same scorer runs it;
- `torch.nn.utils.prune.l1_unstructured` at 50% on every Linear but the output layer, exported the same way.

The routes that distill (`llm structured`, `llm sparse24`, `llm ternary`) are rows too, made stage by stage as a
run makes them (`route_file`), with their packed .ecz size: where ternary weights and 2:4 zeros pay off.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import onnx
import torch

import edgecompress as ec
from edgecompress.core.evaluate.scoring import evaluate_onnx
from edgecompress.delivery import pack
from edgecompress.families.lm.model_dir import load_decoder
from edgecompress.families.lm.presets import ROUTES, route_stages
from edgecompress.families.lm.task import language_model_task
from edgecompress.onnx.graph_passes import fold_weight_transposes
from edgecompress.orchestration.pipeline.run import latency_feeds
from edgecompress.runtime.environment import environment
from edgecompress.runtime.feeds import feeds_for, input_feeds
from edgecompress.runtime.latency import measure_feed_latencies
from edgecompress.techniques.quantize.onnx_lowbit import gemm_to_matmul

SEED = 0
DISTILL_SECONDS = 300
CALIBRATION_BATCHES = 8
ROUTE_ROWS = ("structured", "sparse24", "ternary")  # the routes that distill: each a row, its torch stages then int8


def run() -> dict:
    start = time.perf_counter()
    decoder = load_decoder(None)
    task = language_model_task(decoder, seed=SEED)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stderr(io.StringIO()):
        work = Path(scratch)
        fp32 = work / "fp32.onnx"
        task.export(copy.deepcopy(decoder.model).eval(), fp32)
        untied = work / "fp32-untied.onnx"
        onnx.save_model(gemm_to_matmul(fold_weight_transposes(onnx.load(str(fp32)))[0]), str(untied))
        calibration = list(islice(input_feeds(task.train_loader, fp32), CALIBRATION_BATCHES))
        files: list[tuple[str, str, Path, float]] = [("fp32", "reference", fp32, 0.0)]
        failures: list[str] = []

        def onnx_row(group: str, label: str, config, name: str) -> None:
            began = time.perf_counter()
            path = ec.apply(fp32, config, task, out=work / f"{name}.onnx", seed=SEED)
            files.append((group, label, Path(path), time.perf_counter() - began))

        def torch_row(group: str, label: str, make, name: str) -> None:
            began = time.perf_counter()
            model = make()
            task.export(copy.deepcopy(model).eval(), work / f"{name}.onnx")
            files.append((group, label, work / f"{name}.onnx", time.perf_counter() - began))

        def ort_row(label: str, config, name: str) -> None:
            began = time.perf_counter()
            try:
                files.append(("int4", label, _ort_quantizer(untied, config, work / f"{name}.onnx"), time.perf_counter() - began))
            except Exception as exc:  # ORT's own tool failing on this model is a result too
                failures.append(f"{label}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")

        onnx_row("int8", "edgecompress `llm int8` (dynamic int8, token table int8)", ROUTES["int8"][0], "int8")
        int4 = ROUTES["int4"][0]
        onnx_row("int4", "edgecompress int4, rounded to nearest", int4.model_copy(update={"rounding": "nearest"}), "int4-rtn")
        onnx_row("int4", "edgecompress `llm int4` (GPTQ)", int4, "int4-gptq")
        onnx_row("int4", "edgecompress `llm int4` (GPTQ), accuracy_level 0 (float compute)", int4.model_copy(update={"accuracy_level": 0}), "int4-gptq-al0")
        ort_row("ORT MatMulNBitsQuantizer, default config (block 32, symmetric, MatMul + Gather)", _ort_default(4), "ort-default")
        ort_row("ORT MatMulNBitsQuantizer, RTN config (MatMul)", _ort_config("RTN"), "ort-rtn")
        ort_row("ORT MatMulNBitsQuantizer, GPTQ config (block 32, MatMul)", _ort_config("GPTQ", calibration), "ort-gptq")
        ort_row("ORT MatMulNBitsQuantizer, HQQ config (block 32, MatMul)", _ort_config("HQQ"), "ort-hqq")
        ort_row("ORT MatMulNBitsQuantizer, 2-bit default config (block 32, MatMul + Gather)", _ort_default(2), "ort-int2")
        began = time.perf_counter()
        try:
            files.append(("int4", "onnxruntime-genai model builder, `-p int4 -e cpu`", _genai_int4(decoder.directory, work / "genai"),
                          time.perf_counter() - began))
        except (subprocess.CalledProcessError, OSError) as exc:
            failures.append(f"onnxruntime-genai model builder: {exc}")

        model = decoder.model
        torch_row("prune", "PyTorch `prune.l1_unstructured` 50% (each Linear)", lambda: _torch_prune(model), "torch-l1")
        sparse = {
            "magnitude 50% (per layer)": ec.Prune(pattern="unstructured", criterion="l1", amount=0.5),
            "Wanda 50% (per output row)": ec.Prune(pattern="unstructured", criterion="wanda", scope="row", amount=0.5),
            "SparseGPT 50%": ec.SparseGPT(amount=0.5),
            "magnitude 2:4": ec.Prune(pattern="nm", n=2, m=4, criterion="l1"),
            "Wanda 2:4": ec.Prune(pattern="nm", n=2, m=4, criterion="wanda"),
            "SparseGPT 2:4": ec.SparseGPT(pattern=ec.NM(2, 4)),
        }
        pruned = {}
        for label, config in sparse.items():
            def make(config=config, label=label):
                pruned[label] = ec.apply(model, config, task, seed=SEED)
                return pruned[label]
            torch_row("prune", f"edgecompress {label}", make, f"prune-{len(files)}")
        torch_row("prune", f"edgecompress SparseGPT 2:4 + distillation ({DISTILL_SECONDS} s, KL)",
                  lambda: ec.apply(pruned["SparseGPT 2:4"], ec.Distill(seconds=DISTILL_SECONDS, epochs=8, lr=3e-4), task, teacher=model, seed=SEED),
                  "prune-24-distill")

        for route in ROUTE_ROWS:
            began = time.perf_counter()
            path = route_file(route, model, task, work, DISTILL_SECONDS)
            files.append(("routes", f"edgecompress `llm {route}` ({DISTILL_SECONDS} s of distillation)", path, time.perf_counter() - began))

        for (group, label, path, seconds) in files:
            score = evaluate_onnx(path, task)
            rows.append({"group": group, "label": label, "bytes": _bytes_with_data(path), "perplexity": score.value,
                         **score.details["agreement"], "seconds": seconds,
                         **({"packed_bytes": pack(path, path.with_suffix(".ecz")).path.stat().st_size} if group == "routes" else {})})
        decode = measure_feed_latencies([f[2] for f in files], latency_feeds(task, None, fp32, SEED), rounds=9)
        prompt = measure_feed_latencies([f[2] for f in files], _prompt_feeds(task, fp32), rounds=5)
    for row, step, first in zip(rows, decode, prompt):
        row.update(decode_ms=step[1].median_ms, decode_p25=step[1].p25_ms, decode_p75=step[1].p75_ms, prompt_ms=first[1].median_ms)
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rows": rows, "failures": failures, "peak_rss_mb": max(usage), "seconds": time.perf_counter() - start, "cpu_class": environment()["cpu_class"],
            "params": sum(p.numel() for p in decoder.model.parameters())}


def route_file(route: str, model, task, work: Path, distill_seconds: float) -> Path:
    """An `llm ROUTE` file made as the pipeline makes it, without a run directory: the route's torch stages
    applied in order (the original as the teacher), the result exported, then its quantize stage on that file."""
    *torch_stages, quantize = route_stages(route, distill_seconds=distill_seconds)
    teacher = model
    for stage in torch_stages:
        model = ec.apply(model, stage, task, teacher=teacher, seed=SEED)
    exported = work / f"{route}-fp32.onnx"
    task.export(copy.deepcopy(model).eval(), exported)
    return Path(ec.apply(exported, quantize, task, out=work / f"{route}.onnx", seed=SEED))


def _genai_int4(model_dir: Path, out: Path) -> Path:
    """ONNX Runtime GenAI's model builder, as its docs run it, offline on the local directory."""
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(model_dir), "-o", str(out), "-p", "int4",
               "-e", "cpu", "-c", str(out.parent / "genai-cache")]
    subprocess.run(command, check=True, capture_output=True, timeout=1800)
    return out / "model.onnx"


def _bytes_with_data(path: Path) -> int:
    """The file and its external-data file, if it has one (the GenAI builder writes `model.onnx.data`)."""
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def _prompt_feeds(task, fp32: Path) -> dict:
    """One 128-token prompt with an empty cache, as ORT feeds: the work before the first generated token."""
    inputs, _ = next(iter(task.eval_loader))
    names = [i.name for i in onnx.load(str(fp32), load_external_data=False).graph.input]
    return {1: feeds_for({name: value[:1] for name, value in inputs.items()}, names)}


def _torch_prune(model):
    """What a PyTorch user writes: l1_unstructured 50% on each Linear but the (tied) output layer, then remove."""
    from torch.nn.utils import prune

    pruned = copy.deepcopy(model)
    table = next(m.weight for m in pruned.modules() if isinstance(m, torch.nn.Embedding))
    for module in pruned.modules():
        if isinstance(module, torch.nn.Linear) and module.weight is not table:  # the tied output layer is the table
            prune.l1_unstructured(module, "weight", amount=0.5)
            prune.remove(module, "weight")
    return pruned


def _ort_default(bits: int):
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig

    return DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=bits, op_types_to_quantize=("MatMul", "Gather"))


def _ort_config(algorithm: str, calibration=None):
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.matmul_nbits_quantizer import GPTQWeightOnlyQuantConfig, HQQWeightOnlyQuantConfig, RTNWeightOnlyQuantConfig

    if algorithm == "RTN":
        return RTNWeightOnlyQuantConfig(op_types_to_quantize=("MatMul",))
    if algorithm == "HQQ":
        return HQQWeightOnlyQuantConfig(block_size=32, op_types_to_quantize=("MatMul",))  # "Gather ... not supported yet in HQQ"

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(calibration)

        def get_next(self):
            return next(self.feeds, None)

    return GPTQWeightOnlyQuantConfig(calibration_data_reader=Feeds(), block_size=32, op_types_to_quantize=("MatMul",))


def _ort_quantizer(source: Path, config, target: Path) -> Path:
    """ORT's own quantizer as its docs show it, on `source`; its log silenced."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), algo_config=config)
        quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
    return target


def markdown(result: dict) -> str:
    rows = result["rows"]
    base = rows[0]
    lines = [
        f"## Small language models: the built-in stdlib-coder ({result['params'] / 1e6:.1f}M parameters), seed {SEED}",
        "",
        f"Measured on {result['cpu_class']} in one run of `python -m benchmarks --only lm` ({result['seconds'] / 60:.0f} min; "
        f"peak resident memory {result['peak_rss_mb']:,.0f} MB). Every row is an ONNX file with a key/value cache run by ONNX",
        "Runtime on one thread: perplexity and the agreement with the original (top-1 next token, KL divergence) on the same",
        "64 held-out windows of 128 tokens; a decoding step at batch 1 with 127 cached tokens (decode tokens/s is its inverse;",
        "p25-p75 of the interleaved repeats) and a 128-token prompt with an empty cache (the time to first token).",
        "ORT's quantizer runs on the same fp32 export with the tied output layer stored as a plain weight. The model is weak",
        "(trained for 8 minutes on 1M tokens): differences of a few tenths of perplexity are near the noise of its training.",
        "",
        "| group | artifact | file | of fp32 | perplexity | top-1 agree | KL | decode step (p25-p75) | tokens/s | 128-token prompt | made in |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['group']} | {row['label']} | {row['bytes'] / 1e6:.2f} MB | {row['bytes'] / base['bytes']:.2f}x | {row['perplexity']:.2f} | "
            f"{row['top1']:.3f} | {row['kl_mean']:.4f} | {row['decode_ms']:.2f} ms ({row['decode_p25']:.2f}-{row['decode_p75']:.2f}) | "
            f"{1000 / row['decode_ms']:.0f} | {row['prompt_ms']:.1f} ms | {row['seconds']:.0f} s |"
        )
    lines += [""] + _findings(rows) + [f"Failed, so not a row: {failure}" for failure in result["failures"]]
    return "\n".join(lines)


def _findings(rows: list[dict]) -> list[str]:
    """Issue 20's acceptance, read off the rows above (so a rerun states what it measured, whichever way)."""
    by = {row["label"]: row for row in rows}
    base, gptq, rtn = rows[0], by["edgecompress `llm int4` (GPTQ)"], by["edgecompress int4, rounded to nearest"]
    ort = by["ORT MatMulNBitsQuantizer, default config (block 32, symmetric, MatMul + Gather)"]
    pruned = {name: by[f"edgecompress {name} 50%" + suffix]["perplexity"]
              for name, suffix in (("magnitude", " (per layer)"), ("Wanda", " (per output row)"), ("SparseGPT", ""))}
    order = " < ".join(f"{name} {value:.2f}" for name, value in sorted(pruned.items(), key=lambda item: item[1]))
    distilled = by[f"edgecompress SparseGPT 2:4 + distillation ({DISTILL_SECONDS} s, KL)"]
    return [
        f"- int4 GPTQ: {gptq['bytes'] / base['bytes']:.2f}x the fp32 file, perplexity {100 * (gptq['perplexity'] / base['perplexity'] - 1):+.1f}%; "
        f"{'beats' if gptq['perplexity'] < min(rtn['perplexity'], ort['perplexity']) else 'does not beat'} rounding to nearest "
        f"({rtn['perplexity']:.2f}) and ORT's default int4 ({ort['perplexity']:.2f}) at about the same size; decode "
        f"{base['decode_ms'] / gptq['decode_ms']:.2f}x the fp32 tokens/s.",
        f"- 50% unstructured without fine-tuning, perplexity: {order}.",
        f"- 2:4: SparseGPT {by['edgecompress SparseGPT 2:4']['perplexity']:.2f}, after {DISTILL_SECONDS} s of distillation "
        f"{distilled['perplexity']:.2f} (top-1 agreement {by['edgecompress SparseGPT 2:4']['top1']:.3f} -> {distilled['top1']:.3f}). "
        "The ONNX files of pruned models are dense: ONNX Runtime has no sparse kernels for CPUs, so they are neither smaller nor faster.",
    ] + _route_findings(rows, base) + _genai_finding(by, gptq) + [""]


def _route_findings(rows: list[dict], base: dict) -> list[str]:
    routes = [row for row in rows if row["group"] == "routes"]
    described = "; ".join(f"{row['label'].split('`')[1]} {row['bytes'] / 1e6:.2f} MB (packed .ecz {row['packed_bytes'] / 1e6:.2f} MB, "
                          f"{row['packed_bytes'] / base['bytes']:.3f}x the fp32 file), perplexity {row['perplexity']:.2f}, top-1 {row['top1']:.3f}"
                          for row in routes)
    return [f"- The routes that distill ({DISTILL_SECONDS} s each, so the result depends on the machine's speed): {described}."] if routes else []


def _genai_finding(by: dict, gptq: dict) -> list[str]:
    genai = by.get("onnxruntime-genai model builder, `-p int4 -e cpu`")
    if genai is None:
        return []
    return [f"- ONNX Runtime GenAI's builder: {genai['bytes'] / 1e6:.2f} MB, perplexity {genai['perplexity']:.2f} (top-1 {genai['top1']:.3f}), "
            f"decode {gptq['decode_ms'] / genai['decode_ms']:.2f}x the tokens/s of `llm int4`: its graph fuses into single ops "
            "(GroupQueryAttention with packed q/k/v, as edgecompress's export has too since `families/lm/fusion.py`; "
            "residual adds with the norms, which measured no faster here)."]
